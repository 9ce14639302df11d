"""Stream rules: how a stream's sequence numbers must run, checked on every frame.

Pure, no I/O. A server whose events carry only integers (a game's moves, a room's
events) can lose, repeat or reorder them without a string the detector could find.
A `StreamRule` is declared once (``ws_isolation.stream("room_seq", per="room")``) and
judges every frame of every watched client, like the detector: for each receiver and
each value of the scope field, the numbers must go up by one. Findings are the
framework's `RuleViolation` (``gap``, ``duplicate``, ``out_of_order``, ``total_order``),
reported with the offending frames.

A stream spans ``reconnect()`` of the same client (a resume continues the numbers it
had), unless ``reset_on_reconnect`` says the counter is per connection (the reference
server's ``seq``). A client's reconnect is seen from ``client.metrics.connects``, so
the client needs no change.

Cost: ``on_receive`` is the hot path. It reads one or two fields, compares two ints
and touches one dict; the rest (building a violation, the frames it shows) happens only
when something is wrong. A gap is judged one frame late: the next frame of the same
stream either fills it (a swap: one ``out_of_order``, not a gap and a reorder) or
confirms it; `finish` confirms what is still open at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.isolation.fields import field_path, frame_test, read_field
from pytest_ws_resilience.isolation.rules import (
    RuleFindings,
    RuleViolation,
    receiver_of,
    show_rule_frame,
    span,
)

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.eventlog import LogRecord

__all__ = ["DEFAULT_IGNORE", "StreamRule"]

#: Keys left out when ``total_order`` compares two receivers' events at one number:
#: fields that legitimately differ per connection.
DEFAULT_IGNORE: tuple[str, ...] = ("seq", "connection_id")

# Holes wider than this are kept as a range, not as a set of numbers (a jump from 1 to
# 10**9 must not allocate a billion ints).
_WIDE = 4096


def _number(value: Any) -> int | None:
    """A sequence number: an int, not a bool (``True`` is not number 1)."""
    return value if type(value) is int else None


@dataclass(slots=True)
class _Stream:
    """One receiver's stream of one scope value."""

    first: int
    high: int
    high_raw: str | bytes
    high_index: int
    # Numbers below ``high`` not seen yet (narrow holes), and wide holes as ranges.
    holes: set[int] = field(default_factory=set)
    wide: list[range] = field(default_factory=list)
    # Numbers below ``first`` seen (a stream may start late and get an earlier one).
    early: set[int] = field(default_factory=set)
    # The last jump, judged on the next frame: (numbers missing, the frame before it).
    pending: tuple[range, str | bytes, int] | None = None

    def is_hole(self, number: int) -> bool:
        if number in self.holes:
            return True
        return any(number in hole for hole in self.wide)

    def fill(self, number: int) -> None:
        if number in self.holes:
            self.holes.discard(number)
            return
        for position, hole in enumerate(self.wide):
            if number in hole:
                left, right = range(hole.start, number), range(number + 1, hole.stop)
                self.wide[position : position + 1] = [h for h in (left, right) if h]
                return


@dataclass(slots=True)
class _Receiver:
    """What the rule knows of one client: its streams, and where it stopped reading."""

    client: WsClient
    connects: int
    last_index: int = -1
    streams: dict[Any, _Stream] = field(default_factory=dict)


class StreamRule(RuleFindings):
    """Sequence numbers checked on every frame: no gap, no duplicate, in order.

    A `FrameRule` (see `pytest_ws_resilience.isolation.rules`): the guard attaches it to
    every watched client. Each receiver has one stream per value of the ``per`` field
    (one per client without ``per``); frames without the sequence field (an int), or
    not selected by ``where``, are skipped and not counted as checks.

    Args:
        sequence: dotted path of the sequence field, e.g. ``"room_seq"``.
        per: dotted path of the scope field (one sequence per value), e.g. ``"room"``;
            None: one sequence per client.
        where: a mapping of (dotted) fields a frame must have, or a predicate on the
            parsed frame, selecting the frames the rule applies to.
        gaps: report ``gap`` (n then n+k: the k-1 numbers missing).
        duplicates: report ``duplicate`` (a number seen again).
        order: report ``out_of_order`` (a lower number not seen before).
        total_order: report ``total_order``: two receivers of one scope value got
            different events at the same number (compared without ``ignore`` keys).
        reset_on_reconnect: the counter is per connection: a reconnect starts a new
            stream (else the stream continues across ``reconnect()``).
        ignore: top-level keys left out of the ``total_order`` comparison (fields that
            differ per connection); default `DEFAULT_IGNORE`.

    Raises:
        ValueError: a bad argument (one line naming it).
    """

    __slots__ = (
        "_by_number",
        "_duplicates",
        "_gaps",
        "_ignore",
        "_name",
        "_order",
        "_per",
        "_receivers",
        "_reported",
        "_reset",
        "_select",
        "_sequence",
        "_total_order",
        "per",
        "sequence",
    )

    def __init__(
        self,
        sequence: str,
        *,
        per: str | None = None,
        where: Mapping[str, Any] | Callable[[Any], Any] | None = None,
        gaps: bool = True,
        duplicates: bool = True,
        order: bool = True,
        total_order: bool = False,
        reset_on_reconnect: bool = False,
        ignore: Iterable[str] = DEFAULT_IGNORE,
    ) -> None:
        super().__init__()
        self._sequence = field_path(sequence, "sequence=")
        self._per = None if per is None else field_path(per, "per=")
        self._select = None if where is None else frame_test(where, "where=")
        for argument, value in (
            ("gaps", gaps),
            ("duplicates", duplicates),
            ("order", order),
            ("total_order", total_order),
            ("reset_on_reconnect", reset_on_reconnect),
        ):
            if not isinstance(value, bool):
                raise ValueError(f"{argument}= must be True or False, got {value!r}")
        if isinstance(ignore, str) or not isinstance(ignore, Iterable):
            raise ValueError(f"ignore= must be a list of keys, got {ignore!r}")
        ignored = frozenset(ignore)
        if any(not isinstance(key, str) for key in ignored):
            raise ValueError(
                f"ignore= must be a list of keys (strings), got {sorted(map(repr, ignored))}"
            )
        if not (gaps or duplicates or order or total_order):
            raise ValueError(
                "gaps=, duplicates=, order= and total_order= are all False: "
                "the rule would check nothing"
            )
        #: The sequence field and the scope field, as declared.
        self.sequence = sequence
        self.per = per
        self._gaps, self._duplicates, self._order = gaps, duplicates, order
        self._total_order = total_order
        self._reset = reset_on_reconnect
        self._ignore = ignored
        scope = (
            f" per {per!r}" if per is not None else " per connection" if reset_on_reconnect else ""
        )
        self._name = f"stream {sequence!r}{scope}"
        self._receivers: dict[int, _Receiver] = {}
        # total_order: (scope, number) -> (normalised event, receiving client, frame).
        self._by_number: dict[tuple[Any, int], tuple[dict[str, Any], int, str | bytes]] = {}
        # (kind, client id, scope, number) of each duplicate and (narrow) gap number
        # reported: the resume helper does not report them a second time.
        self._reported: set[tuple[str, int, Any, int]] = set()

    def __repr__(self) -> str:
        return (
            f"StreamRule({self._name}, checks={self._checks}, violations={len(self._violations)})"
        )

    # -- FrameRule -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        """Judge one frame (the hot path: cheap unless something is wrong)."""
        receiver = self._receivers.get(id(client))
        connects = client.metrics.connects
        if receiver is None:
            receiver = self._receivers[id(client)] = _Receiver(client, connects)
        elif receiver.connects != connects:
            receiver.connects = connects
            if self._reset:
                self._close_streams(receiver)
        receiver.last_index = record.index
        data = record.data
        if type(data) is not dict:
            return
        path = self._sequence
        number = data.get(path[0]) if len(path) == 1 else read_field(data, path)
        if type(number) is not int:
            return
        select = self._select
        if select is not None and not select(data):
            return
        per = self._per
        scope = None if per is None else read_field(data, per)
        try:
            stream = receiver.streams.get(scope)
        except TypeError:  # an unhashable scope value names no stream
            return
        self._checks += 1
        if stream is None:
            receiver.streams[scope] = _Stream(number, number, record.raw, record.index)
        else:
            self._judge(receiver, scope, stream, number, record)
        if self._total_order:
            self._compare(client, scope, number, data, record)

    def finish(self) -> None:
        """At teardown: judge the frames each client received after the last one this
        rule saw (frames that came late, after it was detached), then confirm every gap
        still open. Safe to call more than once."""
        for receiver in list(self._receivers.values()):
            client = receiver.client
            for record in client.log.since(receiver.last_index + 1):
                self.on_receive(client, record)
            self._close_streams(receiver, forget=False)

    def nothing_checked(self) -> str | None:
        if self._checks:
            return None
        where = " selected by where=" if self._select is not None else ""
        return f"no frame{where} carried the sequence field {self.sequence!r} (an int)"

    # -- what the resume helper asks -------------------------------------------------------

    def last_seen(self, client: WsClient, scope: Any = None) -> int | None:
        """The highest number ``client`` got in ``scope``'s stream; None before any."""
        receiver = self._receivers.get(id(client))
        if receiver is None:
            return None
        stream = receiver.streams.get(scope)
        return None if stream is None else stream.high

    def reported(self, kind: str, client: WsClient, scope: Any, number: int) -> bool:
        """True when this rule already reported ``number`` of ``scope`` for ``client``
        as ``kind`` (``duplicate`` or ``gap``): the resume helper does not report the
        same finding twice."""
        return (kind, id(client), scope, number) in self._reported

    def advance(self, client: WsClient, scope: Any, head: int) -> None:
        """The numbers through ``head`` were judged by a resume (which reports those
        lost): the stream goes on from ``head``, and no gap below it is reported."""
        receiver = self._receivers.get(id(client))
        if receiver is None:
            return
        stream = receiver.streams.get(scope)
        if stream is None or head < stream.high:
            return
        stream.pending = None
        skipped = range(stream.high + 1, head + 1)
        if len(skipped) > _WIDE:
            stream.wide.append(skipped)
        else:
            stream.holes.update(skipped)  # one that comes later is out of order
        stream.high = head

    # -- judging ----------------------------------------------------------------------------

    def _judge(
        self, receiver: _Receiver, scope: Any, stream: _Stream, number: int, record: LogRecord
    ) -> None:
        high = stream.high
        if number == high + 1:  # the usual case
            if stream.pending is not None:
                self._confirm(receiver, scope, stream)
            stream.high, stream.high_raw, stream.high_index = number, record.raw, record.index
            return
        if number > high:
            if stream.pending is not None:
                self._confirm(receiver, scope, stream)
            missing = range(high + 1, number)
            if len(missing) > _WIDE:
                stream.wide.append(missing)
            else:
                stream.holes.update(missing)
            stream.pending = (missing, stream.high_raw, stream.high_index)
            stream.high, stream.high_raw, stream.high_index = number, record.raw, record.index
            return
        # A number at or below the highest: filling a hole, or seen before.
        if number >= stream.first and stream.is_hole(number):
            stream.fill(number)
            pending = stream.pending
            if pending is not None and number in pending[0] and len(pending[0]) <= _WIDE:
                if not any(stream.is_hole(n) for n in pending[0]):
                    stream.pending = None
            if self._order:
                self._report(
                    "out_of_order",
                    receiver,
                    f"{self._scope_text(scope)}{number} after {high}",
                    (record.raw,),
                    record.index,
                )
            return
        if number < stream.first and number not in stream.early:
            stream.early.add(number)
            if self._order:
                self._report(
                    "out_of_order",
                    receiver,
                    f"{self._scope_text(scope)}{number} after {high} (the stream began at "
                    f"{stream.first})",
                    (record.raw,),
                    record.index,
                )
            return
        if stream.pending is not None:
            self._confirm(receiver, scope, stream)
        self._reported.add(("duplicate", id(receiver.client), scope, number))
        if self._duplicates:
            self._report(
                "duplicate",
                receiver,
                f"{self._scope_text(scope)}{number} received again (highest so far {high})",
                (record.raw,),
                record.index,
            )

    def _confirm(self, receiver: _Receiver, scope: Any, stream: _Stream) -> None:
        """The jump judged one frame late: the numbers still missing are a gap."""
        pending = stream.pending
        stream.pending = None
        if pending is None or not self._gaps:
            return
        missing, before, before_index = pending
        if len(missing) > _WIDE:
            text = f"{missing.start}..{missing.stop - 1} ({len(missing)} numbers)"
        else:
            numbers = [n for n in missing if stream.is_hole(n)]
            if not numbers:
                return
            text = span(numbers)
            client = id(receiver.client)
            self._reported.update(("gap", client, scope, n) for n in numbers)
        after = missing.stop
        self._report(
            "gap",
            receiver,
            f"{self._scope_text(scope)}{missing.start - 1} then {after}: missing {text}",
            (before,),
            before_index,
            detail=(f"the stream went from {missing.start - 1} to {after}",),
        )

    def _close_streams(self, receiver: _Receiver, *, forget: bool = True) -> None:
        for scope, stream in receiver.streams.items():
            if stream.pending is not None:
                self._confirm(receiver, scope, stream)
        if forget:
            receiver.streams.clear()

    def _compare(
        self, client: WsClient, scope: Any, number: int, data: dict[str, Any], record: LogRecord
    ) -> None:
        ignore = self._ignore
        normal = {key: value for key, value in data.items() if key not in ignore}
        key = (scope, number)
        first = self._by_number.get(key)
        if first is None:
            self._by_number[key] = (normal, id(client), record.raw)
            return
        event, owner, raw = first
        if owner == id(client) or event == normal:
            return
        other = self._receivers.get(owner)
        other_name = receiver_of(other.client)[1] if other is not None else "another receiver"
        receiver = self._receivers[id(client)]
        self._report(
            "total_order",
            receiver,
            f"{self._scope_text(scope)}{number} is another event than {other_name} got at {number}",
            (raw, record.raw),
            record.index,
            detail=(f"compared without the keys {sorted(ignore)}",),
        )

    def _scope_text(self, scope: Any) -> str:
        if self._per is None:
            return f"{self.sequence} "
        return f"{self.per}={scope!r}: {self.sequence} "

    def _report(
        self,
        kind: str,
        receiver: _Receiver,
        message: str,
        raws: tuple[str | bytes, ...],
        index: int,
        detail: tuple[str, ...] = (),
    ) -> None:
        name, connection = receiver_of(receiver.client)
        self._violations.append(
            RuleViolation(
                kind=kind,
                rule=self._name,
                receiver=name,
                connection=connection,
                message=message,
                frames=tuple(show_rule_frame(raw) for raw in raws),
                detail=detail,
                frame_index=index,
            )
        )
