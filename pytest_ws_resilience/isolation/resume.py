"""The resume helper for sequence-based protocols: a replay must hold exactly the
events missed, none twice, none lost.

A client that reconnects tells the server the last number it saw (``{"type":
"resume", "room": R, "after": N}``); the server replays what came after and says it is
done (``{"type": "resumed", "head": H}``). Two bugs hide there without any string the
detector could find: an event replayed twice, and events posted while the user was
away that are never replayed. `resume` drives the exchange with a few bounded awaits
(the client's own ``reconnect``, ``send_json`` and ``expect``); `judge_replay` is the
pure judgement of what came back. Findings are `RuleViolation` s of a `ReplayChecks`
rule in the guard's report, so the test fails with the report, without a hand-written
assertion; one the live `StreamRule` already reported (the same duplicate, the same
gap) is not reported twice.

No asyncio import: the awaits are the client's; the module stays importable where
the pure ones are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.isolation.fields import (
    field_path,
    fields_match,
    fields_of,
    frame_test,
    read_field,
)
from pytest_ws_resilience.isolation.rules import (
    RuleFindings,
    RuleViolation,
    receiver_of,
    show_rule_frame,
    span,
)
from pytest_ws_resilience.isolation.streams import StreamRule

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.eventlog import EventLog, LogRecord

__all__ = [
    "DEFAULT_DONE",
    "ReplayChecks",
    "ResumeResult",
    "judge_replay",
    "last_in_log",
    "pick_stream",
    "resume_stream",
]

#: The frame that ends a replay, by default (the reference server's answer).
DEFAULT_DONE: Mapping[str, Any] = {"type": "resumed"}


@dataclass(frozen=True)
class ResumeResult:
    """What one resume replayed, judged.

    Attributes:
        after: the last number the client had seen (sent as the ``after`` field; 0
            when it had seen none).
        replayed: the numbers replayed, in the order received.
        missing: numbers from ``after + 1`` through ``head`` that were not replayed.
        duplicated: numbers replayed more than once, or replayed although the client
            had them before the disconnect (``<= after``), each once, in order.
        head: the stream's head: the done frame's head field, else the highest number
            replayed, else ``after``.
        done: the frame that ended the replay.
    """

    after: int
    replayed: tuple[int, ...]
    missing: tuple[int, ...]
    duplicated: tuple[int, ...]
    head: int
    done: Any = None

    @property
    def ok(self) -> bool:
        """True when the replay held exactly the events missed."""
        return not self.missing and not self.duplicated

    def __bool__(self) -> bool:
        return self.ok


def judge_replay(
    after: int, replayed: Sequence[int], head: int | None, done: Any = None
) -> ResumeResult:
    """Judge a replay (pure): exactly ``after + 1 .. head``, each once.

    Args:
        after: the last number the client had seen.
        replayed: the numbers replayed, in the order received.
        head: the head the server announced; None: the highest replayed (or ``after``).
        done: the frame that ended the replay, kept in the result.
    """
    top = max(replayed, default=after)
    final = max(top, after) if head is None else head
    seen: set[int] = set()
    duplicated: list[int] = []
    for number in replayed:
        if (number in seen or number <= after) and number not in duplicated:
            duplicated.append(number)
        seen.add(number)
    missing = tuple(n for n in range(after + 1, final + 1) if n not in seen)
    return ResumeResult(after, tuple(replayed), missing, tuple(duplicated), final, done)


def _selector(scope: Mapping[str, Any] | None) -> Callable[[Any], bool]:
    if not scope:
        return lambda data: True
    wanted = fields_of(scope, "scope=")
    return lambda data: fields_match(data, wanted)


def last_in_log(
    log: EventLog, sequence: tuple[str, ...], select: Callable[[Any], bool]
) -> int | None:
    """The highest sequence number among the retained frames ``select`` accepts."""
    best: int | None = None
    for record in log.records:
        number = read_field(record.data, sequence)
        if type(number) is int and select(record.data) and (best is None or number > best):
            best = number
    return best


class ReplayChecks(RuleFindings):
    """The findings of every resume a test judged, as a `FrameRule` of the guard (so
    they are in its report and fail its verdicts). It judges no live frame."""

    name = "resume replays"

    def __init__(self) -> None:
        super().__init__()
        self.resumes = 0

    def __repr__(self) -> str:
        return f"ReplayChecks(resumes={self.resumes}, violations={len(self._violations)})"

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        """Live frames are the stream rules' job."""

    def nothing_checked(self) -> str | None:
        return None if self.resumes else "no resume was judged"

    def record(
        self,
        client: WsClient,
        result: ResumeResult,
        frames: Sequence[LogRecord],
        *,
        label: str,
        stream: StreamRule | None,
        scope: Any,
    ) -> None:
        """File the findings of one judged resume (those ``stream`` has not already)."""
        self.resumes += 1
        self._checks += len(frames) + 1
        receiver, connection = receiver_of(client)
        twice = [
            n
            for n in result.duplicated
            if stream is None or not stream.reported("duplicate", client, scope, n)
        ]
        by_number: dict[int, list[LogRecord]] = {}
        for frame, number in zip(frames, result.replayed, strict=True):
            by_number.setdefault(number, []).append(frame)
        for number in twice:
            shown = by_number.get(number, [])
            why = (
                "replayed twice" if len(shown) > 1 else f"replayed although <= after={result.after}"
            )
            self._violations.append(
                RuleViolation(
                    kind="replayed_twice",
                    rule=f"{self.name} ({label})",
                    receiver=receiver,
                    connection=connection,
                    message=f"{label}: {number} {why}",
                    frames=tuple(show_rule_frame(r.raw) for r in shown[:2]),
                    frame_index=shown[-1].index if shown else -1,
                )
            )
        lost = [
            n
            for n in result.missing
            if stream is None or not stream.reported("gap", client, scope, n)
        ]
        if lost:
            self._violations.append(
                RuleViolation(
                    kind="lost",
                    rule=f"{self.name} ({label})",
                    receiver=receiver,
                    connection=connection,
                    message=(
                        f"{label}: after {result.after} the replay up to head {result.head} "
                        f"lacks {span(lost)}"
                    ),
                    frames=(show_rule_frame(_raw(result.done)),),
                    detail=(f"replayed: [{span(result.replayed)}]",),
                )
            )


def _raw(frame: Any) -> str:
    try:
        return json.dumps(frame)
    except (TypeError, ValueError):
        return repr(frame)


def pick_stream(
    streams: Iterable[StreamRule], sequence: str, scope: Mapping[str, Any] | None, message: Any
) -> tuple[StreamRule | None, Any]:
    """The declared stream rule of ``sequence`` and the scope value a resume is about:
    from ``scope`` (its entry for the rule's ``per`` field), else the message's."""
    for rule in streams:
        if rule.sequence != sequence:
            continue
        if rule.per is None:
            return rule, None
        path = field_path(rule.per, "per=")
        value = read_field(scope, path) if scope else None
        if value is None:
            value = read_field(message, path)
        if value is not None:
            return rule, value
    return None, None


async def resume_stream(
    client: WsClient,
    message: Mapping[str, Any],
    *,
    sequence: str,
    scope: Mapping[str, Any] | None = None,
    after_field: str = "after",
    done: Mapping[str, Any] | Callable[[Any], Any] = DEFAULT_DONE,
    head_field: str | None = "head",
    reconnect: bool = True,
    streams: Iterable[StreamRule] = (),
    checks: ReplayChecks,
) -> ResumeResult:
    """Reconnect ``client``, ask for a replay after the last number it saw, judge it.

    The guard's ``resume`` (`IsolationGuard.resume`) calls this; see there for the
    arguments. Each await is bounded: the client's reconnect by its connect and close
    timeouts, the wait for the done frame by its recv timeout.

    Raises:
        ValueError: a bad argument (one line naming it).
        WsTimeoutError: the done frame did not come within the recv timeout.
    """
    path = field_path(sequence, "sequence=")
    if not isinstance(message, Mapping):
        raise ValueError(
            f"message must be a mapping (the resume frame), got {type(message).__name__}"
        )
    if not isinstance(after_field, str) or not after_field:
        raise ValueError(f"after_field= must be a field name, got {after_field!r}")
    if head_field is not None and (not isinstance(head_field, str) or not head_field):
        raise ValueError(f"head_field= must be a field name or None, got {head_field!r}")
    if scope is not None and not isinstance(scope, Mapping):
        raise ValueError(
            f"scope= must be a mapping of fields such as {{'room': 'lobby'}}, got {scope!r}"
        )
    if not isinstance(reconnect, bool):
        raise ValueError(f"reconnect= must be True or False, got {reconnect!r}")
    is_done = frame_test(done, "done=")
    rule, scope_value = pick_stream(streams, sequence, scope, message)
    if rule is not None and rule.per is not None:
        select = _selector({rule.per: scope_value})
    else:
        select = _selector(scope)
    last = rule.last_seen(client, scope_value) if rule is not None else None
    if last is None:
        last = last_in_log(client.log, path, select)
    after = 0 if last is None else last
    if reconnect:
        await client.reconnect()
    start = client.log.last_index
    await client.send_json({**message, after_field: after})
    done_frame = await client.expect(lambda frame: is_done(frame))
    frames: list[LogRecord] = []
    numbers: list[int] = []
    for record in client.log.since(start + 1):
        if record.data is done_frame:
            break
        number = read_field(record.data, path)
        if type(number) is int and select(record.data):
            frames.append(record)
            numbers.append(number)
    head = read_field(done_frame, (head_field,)) if head_field is not None else None
    result = judge_replay(after, numbers, head if type(head) is int else None, done_frame)
    if scope_value is not None:
        label = f"{sequence} of {scope_value!r}"
    else:
        label = sequence if not scope else f"{sequence} of {dict(scope)!r}"
    checks.record(client, result, frames, label=label, stream=rule, scope=scope_value)
    if rule is not None:
        rule.advance(client, scope_value, result.head)
    return result
