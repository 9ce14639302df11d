"""What ``expect_close`` expects of a connection's end, and how a miss is worded.

Pure: `WsClient.expect_close` resolves its bound and waits for the end
(`pytest_ws_resilience.client.ending.await_close`); this module checks the ``code=``
argument, judges the code the connection ended with, and writes the one-line errors:
``still open after 2s (explicit); expected close 4001`` (a `WsTimeoutError`), or a
`WsConnectionClosedError` naming both codes, who closed and the reason (redacted).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pytest_ws_resilience.client.close_cause import ABNORMAL_CLOSURE, CloseCause, closed_error
from pytest_ws_resilience.config.bounds import shown
from pytest_ws_resilience.errors import WsConnectionClosedError, WsTimeoutError
from pytest_ws_resilience.redaction import redact

__all__ = ["MAX_CLOSE_CODE", "MIN_CLOSE_CODE", "ExpectedClose", "expected_close"]

#: The close codes a connection can end with (RFC 6455, 7.4): 1000-2999 the protocol's
#: (1006 reported for a connection lost without a close frame), 3000-3999 registered,
#: 4000-4999 private to the application (``4001 token expired``).
MIN_CLOSE_CODE = 1000
MAX_CLOSE_CODE = 4999


def _is_code(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and MIN_CLOSE_CODE <= value <= MAX_CLOSE_CODE
    )


@dataclass(frozen=True, slots=True)
class ExpectedClose:
    """The codes an ``expect_close`` accepts, in the order given (empty: any code)."""

    codes: tuple[int, ...] = ()

    def accepts(self, code: int) -> bool:
        return not self.codes or code in self.codes

    def describe(self) -> str:
        """``close 4001``, ``close 1000 or 4001``, ``a close``."""
        if not self.codes:
            return "a close"
        return "close " + " or ".join(str(c) for c in self.codes)

    def still_open(self, label: str, bound: str, recent: str = "") -> WsTimeoutError:
        """The error of a connection that did not close within ``bound``."""
        text = f"{label}: still open after {bound}; expected {self.describe()}"
        return WsTimeoutError(redact(f"{text}; {recent}" if recent else text))

    def mismatch(self, label: str, code: int, cause: CloseCause | None) -> WsConnectionClosedError:
        """The error of a connection that closed with a code not expected: both codes,
        then who closed and why (`CloseCause.describe`), redacted."""
        return closed_error(
            f"{label}: closed with code {code}, expected {self.describe()}", cause, code=code
        )

    def judge(self, label: str, code: int | None, cause: CloseCause | None) -> int:
        """The close code when it is one expected (1006 for a connection lost before
        its code was known).

        Raises:
            WsConnectionClosedError: another code.
        """
        actual = ABNORMAL_CLOSURE if code is None else code
        if not self.accepts(actual):
            raise self.mismatch(label, actual, cause)
        return actual


def expected_close(code: int | Collection[int] | None) -> ExpectedClose:
    """The ``code=`` argument of ``expect_close``: one close code, a collection of them,
    or None for any.

    Raises:
        ValueError: one line naming the argument, what it must be and what came.
    """
    if code is None:
        return ExpectedClose()
    if _is_code(code):
        assert isinstance(code, int)
        return ExpectedClose((code,))
    if isinstance(code, Collection) and not isinstance(code, (str, bytes, bytearray)):
        codes = tuple(code)
        if codes and all(_is_code(c) for c in codes):
            return ExpectedClose(tuple(dict.fromkeys(codes)))
    raise ValueError(
        f"expect_close(code={shown(code)}) is invalid: expected a close code (an int from "
        f"{MIN_CLOSE_CODE} to {MAX_CLOSE_CODE}), a non-empty collection of them, or None"
    )
