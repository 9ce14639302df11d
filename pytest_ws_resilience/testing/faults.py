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
    "DELIVER_AFTER_LEAVE",
    "DROP_EVENT",
    "DUPLICATE_EVENT",
    "DUPLICATE_REPLAY",
    "FAULTS",
    "JOIN_RACE",
    "KEEP_EXPIRED_SESSIONS",
    "LEAK",
    "LEAK_CONNECTIONS",
    "LOSE_HISTORY",
    "LOSE_MISSED_EVENTS",
    "REORDER_EVENTS",
    "ROOM_FAULTS",
    "ROOM_LEAK",
    "ROOM_RELABEL",
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
#: A connection outlives its token: the token is checked at the handshake only, and
#: the connection is not closed when it expires (``4001 token expired`` when clean).
#: Decided at the handshake: connections opened while it is on are never expired.
KEEP_EXPIRED_SESSIONS = "keep_expired_sessions"
#: Every closed connection leaves an open file descriptor and 64 KiB of memory behind
#: (a resource leak per connection, as a forgotten ``close()`` in a handler leaves).
LEAK_CONNECTIONS = "leak_connections"


# -- rooms: bugs no content shows (room events carry no user data) ------------------

#: Every room event also goes, unchanged, to the members of every other room.
ROOM_LEAK = "room_leak"
#: Every room event also goes to the members of every other room, with ``room`` set
#: to the receiver's room (same ``room_seq``, same value).
ROOM_RELABEL = "room_relabel"
#: ``leave`` is answered ``left``, but the connection keeps getting the room's events.
DELIVER_AFTER_LEAVE = "deliver_after_leave"
#: A join keeps its connection in one server-wide slot while it "loads the room"
#: (``ServerConfig.join_delay_s``) and then adds whoever is in the slot: two joins
#: within that window put the second joiner into the first room too, and the first
#: joiner into none. Sequential joins never show it.
JOIN_RACE = "join_race"
#: ``resume`` replays the first missed event twice (the identical frame).
DUPLICATE_REPLAY = "duplicate_replay"
#: ``resume`` replays nothing and answers ``replayed: 0`` with the true head.
LOSE_MISSED_EVENTS = "lose_missed_events"

#: The faults of the rooms protocol.
ROOM_FAULTS: frozenset[str] = frozenset(
    {ROOM_LEAK, ROOM_RELABEL, DELIVER_AFTER_LEAVE, JOIN_RACE, DUPLICATE_REPLAY, LOSE_MISSED_EVENTS}
)

FAULTS: frozenset[str] = frozenset(
    {
        LEAK,
        DROP_EVENT,
        REORDER_EVENTS,
        DUPLICATE_EVENT,
        SLOW_ACCEPT,
        LOSE_HISTORY,
        ACCEPT_INVALID_TOKENS,
        KEEP_EXPIRED_SESSIONS,
        LEAK_CONNECTIONS,
        *ROOM_FAULTS,
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
