"""Fault switches of the reference server: known bugs it can be told to have.

Each fault reproduces one class of production failure, so the detectors of this
package (isolation, event contracts, reconnection checks) can be shown to catch it.
All are off by default. Names are plain strings so they travel well through the CLI,
config files and threads.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ACCEPT_INVALID_TOKENS",
    "DROP_EVENT",
    "DUPLICATE_EVENT",
    "FAULTS",
    "LEAK",
    "LOSE_HISTORY",
    "REORDER_EVENTS",
    "SLOW_ACCEPT",
    "parse_faults",
]

#: Every agent event of a run is also sent to every other connected user.
LEAK = "leak"
#: ``tool_completed`` is dropped; its seq number is consumed, so receivers see a gap.
DROP_EVENT = "drop_event"
#: ``tool_completed`` is sent before ``tool_executing``.
REORDER_EVENTS = "reorder_events"
#: ``tool_executing`` is delivered twice, as the identical frame (same seq).
DUPLICATE_EVENT = "duplicate_event"
#: The opening handshake is delayed by ``ServerConfig.slow_accept_s``.
SLOW_ACCEPT = "slow_accept"
#: A user's history is forgotten whenever that user opens a new connection.
LOSE_HISTORY = "lose_history"
#: A present but expired, wrongly signed or malformed token is accepted.
ACCEPT_INVALID_TOKENS = "accept_invalid_tokens"

FAULTS: frozenset[str] = frozenset(
    {
        LEAK,
        DROP_EVENT,
        REORDER_EVENTS,
        DUPLICATE_EVENT,
        SLOW_ACCEPT,
        LOSE_HISTORY,
        ACCEPT_INVALID_TOKENS,
    }
)


def parse_faults(names: Iterable[str]) -> frozenset[str]:
    """Validate fault names and return them as a frozenset.

    Raises:
        ValueError: one line naming the unknown fault(s) and the valid ones.
    """
    if isinstance(names, str):  # a lone name, not an iterable of characters
        names = (names,)
    chosen = frozenset(name.strip() for name in names)
    unknown = sorted(chosen - FAULTS)
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ValueError(
            f"unknown fault{plural} {', '.join(map(repr, unknown))}; "
            f"valid faults: {', '.join(sorted(FAULTS))}"
        )
    return chosen
