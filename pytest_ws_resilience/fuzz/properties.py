"""The properties every fuzzed message must keep, judged on what one exchange saw.

After each message: an answer (any frame, an error frame counts) came within the
answer bound; the connection is still open (a close with 1011, 1006 or any code the
user did not allow is a failure); the server answers the health message with the
expected reply. `Exchange` is what the runner observed; `judge` names the first
property broken, or None.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["CLOSE_MEANINGS", "Exchange", "judge"]

#: Close codes named in failures.
CLOSE_MEANINGS: dict[int, str] = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1006: "dropped without a close frame",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal error: the server's handler raised",
}


@dataclass(frozen=True)
class Exchange:
    """What one fuzzed message led to.

    Attributes:
        answered: a frame came after the message, within the answer bound.
        close_code: the connection's close code when it closed (1006: no close
            frame), else None.
        close_reason: the server's close reason.
        health: "ok", "no reply" (timed out), "closed" or "not checked" (health
            checks off, or the connection closed before).
        answer_bound_s: how long the answer was waited for.
    """

    answered: bool
    close_code: int | None = None
    close_reason: str = ""
    health: str = "ok"
    answer_bound_s: float = 0.0


def _closed(code: int, reason: str) -> str:
    meaning = CLOSE_MEANINGS.get(code, "")
    said = f", reason {reason!r}" if reason else ""
    return f"the connection closed with {code}" + (f" ({meaning}{said})" if meaning else said)


def judge(exchange: Exchange, *, allowed_close_codes: Collection[int] = ()) -> str | None:
    """The broken property, as one line, or None when every property held."""
    code = exchange.close_code
    if code is not None and code not in allowed_close_codes:
        return _closed(code, exchange.close_reason)
    if code is None and not exchange.answered:
        return f"no answer and no error frame within {exchange.answer_bound_s:g} s"
    if exchange.health == "no reply":
        return (
            "the server did not answer the health message within "
            f"{exchange.answer_bound_s:g} s after this one"
        )
    return None
