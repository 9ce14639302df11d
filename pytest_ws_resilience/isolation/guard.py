"""The ``ws_isolation`` fixture's object: an isolation detector plus the test's verdict.

Pure, no I/O. The detector only finds violations; whether they fail the test is a
separate decision, taken here: a test may declare it provokes violations on purpose
(to prove a leak is caught), except under the ``websocket_security`` marker, where
the guard is strict.

The verdict is asked twice: after the test body (`verdict`: the test fails there, once,
with the report) and at teardown (`teardown_verdict`: for frames that arrived after the
body). One failure per leak: once the body's verdict failed the test, frames that come
later (the rest of a leaking stream) join the report as a note, never as a second
error; a leak that first shows at teardown fails the teardown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.errors import IsolationViolationError
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.differential import (
    COUNTER_KEYS,
    DifferentialResult,
    FrameNormaliser,
)
from pytest_ws_resilience.isolation.nothing_checked import ClientsSeen, isolation_nothing_checked
from pytest_ws_resilience.isolation.options import IsolationOptions, read_isolation_options
from pytest_ws_resilience.isolation.resume import (
    DEFAULT_DONE,
    ReplayChecks,
    ResumeResult,
    resume_stream,
)
from pytest_ws_resilience.isolation.rules import FrameRule, RuleViolation, format_rule_report
from pytest_ws_resilience.isolation.scopes import ScopeRule, ScopeSignals
from pytest_ws_resilience.isolation.streams import DEFAULT_IGNORE, StreamRule
from pytest_ws_resilience.vacuous import NothingChecked

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.tokens import TestUser
    from pytest_ws_resilience.isolation.markers import UserIdentity
    from pytest_ws_resilience.isolation.races import RaceResult
    from pytest_ws_resilience.isolation.runs import Action, ClientSource, Scenario
    from pytest_ws_resilience.isolation.violation import IsolationViolation

__all__ = [
    "DEFAULT_RACE_JITTER_S",
    "DEFAULT_RACE_ROUNDS",
    "DEFAULT_SETTLE_S",
    "IsolationGuard",
]

#: How long a stream must stay silent to be done (``differential``, ``race``): frames
#: that come after the scenario returns count.
DEFAULT_SETTLE_S = 0.1
#: Rounds of ``race`` when not given, and the widest per-client delay after a release
#: (see docs/isolation.md, "Beyond content", for the measurement behind it).
DEFAULT_RACE_ROUNDS = 20
DEFAULT_RACE_JITTER_S = 0.02


class IsolationGuard:
    """The ``ws_isolation`` fixture: an `IsolationDetector` plus the test's verdict.

    Any violation fails the test, unless the test declared it expects them with
    `expect_violations` (to assert on them, e.g. to prove a leak is caught). Under the
    ``websocket_security`` marker the guard is strict: violations cannot be expected.

    Args:
        detector: the detector watching the test's clients.
        strict: refuse `expect_violations` (``websocket_security``), and fail a test
            whose detector checked nothing (`nothing_checked`).
        options: options given as marker arguments, applied at once.
        clients_seen: what the test used (`ClientsSeen`); without it the guard does
            not judge whether anything was checked.
    """

    __test__ = False

    def __init__(
        self,
        detector: IsolationDetector,
        *,
        strict: bool = False,
        options: IsolationOptions | None = None,
        clients_seen: ClientsSeen | None = None,
    ) -> None:
        #: The detector: markers, switches, every violation (see `IsolationDetector`).
        self.detector = detector
        #: True under ``websocket_security``: violations cannot be expected.
        self.strict = strict
        self._expected = False
        self._reported = 0
        self._failed_in_call = False
        self._clients_seen = clients_seen
        #: True once `verdict` failed the test for checking nothing (strict).
        self.failed_vacuous = False
        #: Rules checked on every frame beside the detector (`add_rule`), in order.
        self.rules: list[FrameRule] = []
        self._attach: Callable[[FrameRule], None] | None = None
        if options is not None:
            detector.configure(options)

    def __repr__(self) -> str:
        return (
            f"IsolationGuard(strict={self.strict}, violations={len(self.violations)}, "
            f"checks={self.detector.checks})"
        )

    # -- what a test reads ---------------------------------------------------------------

    @property
    def violations(self) -> list[IsolationViolation]:
        """Violations found so far, in order (the detector's first ``max_violations``)."""
        return self.detector.violations

    @property
    def rule_violations(self) -> list[RuleViolation]:
        """Findings of the rules (scope, stream, replay), rule by rule, in order."""
        return [violation for rule in self.rules for violation in rule.violations]

    @property
    def violation_count(self) -> int:
        """Every finding so far: content leaks (kept or not) and rule violations."""
        return self.detector.violation_count + sum(len(r.violations) for r in self.rules)

    @property
    def checks(self) -> int:
        """Frames scanned so far (a test asserting zero violations can check it is > 0)."""
        return self.detector.checks

    def report(self) -> str:
        """Every finding: content leaks grouped by owner and receiver, then each rule's
        violations; one line per check when clean."""
        content = self.detector.report()
        if not self.rules:
            return content
        rule_lines = format_rule_report(self.rules)
        found = sum(len(rule.violations) for rule in self.rules)
        if self.detector.violation_count or not found:
            return "\n".join([content, *rule_lines])
        plural = "s" if found > 1 else ""
        head = (
            f"{found} isolation rule violation{plural}: frames a connection should not "
            "have had, or events lost or repeated"
        )
        return "\n".join([head, *rule_lines, content])

    def assert_clean(self) -> None:
        """Raise `IsolationViolationError` with the report if anything was found."""
        if self.violation_count:
            raise IsolationViolationError(self.report(), self.detector.violations)

    # -- stream rules and resumes (issue 13: streams) -----------------------------------

    def stream(
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
    ) -> StreamRule:
        """Check the sequence numbers of every watched client's frames from now on:
        no gap, no duplicate, in order (a `StreamRule`; its arguments). Its findings
        fail the test as leaks do, with the offending frames in the report.

        Raises:
            ValueError: a bad argument (one line naming it).
        """
        try:
            rule = StreamRule(
                sequence,
                per=per,
                where=where,
                gaps=gaps,
                duplicates=duplicates,
                order=order,
                total_order=total_order,
                reset_on_reconnect=reset_on_reconnect,
                ignore=ignore,
            )
        except ValueError as err:
            raise ValueError(f"ws_isolation.stream(): {err}") from None
        self.add_rule(rule)
        return rule

    async def resume(
        self,
        client: WsClient,
        message: Mapping[str, Any],
        *,
        sequence: str | None = None,
        scope: Mapping[str, Any] | None = None,
        after_field: str = "after",
        done: Mapping[str, Any] | Callable[[Any], Any] = DEFAULT_DONE,
        head_field: str | None = "head",
        reconnect: bool = True,
    ) -> ResumeResult:
        """Reconnect ``client`` and resume its stream; judge the replay.

        Reads the last number of ``sequence`` the client saw (in ``scope``: from the
        declared `stream` rule of that field, else from the client's event log; 0 when
        none), reconnects (``reconnect=True``, bounded as ``client.reconnect()``),
        sends ``message`` with ``after_field`` set to that number, waits (recv timeout)
        for the ``done`` frame, and judges the frames replayed in between: exactly the
        events missed, none twice (``replayed_twice``), none lost (``lost``: from the
        last + 1 to the head, read from ``head_field`` of the done frame, else the
        highest replayed). Findings join the report and fail the test; one the live
        stream rule already reported is not reported again.

        Args:
            client: a watched client.
            message: the resume frame, e.g. ``{"type": "resume", "room": "lobby"}``.
            sequence: dotted path of the sequence field, e.g. ``"room_seq"``; None:
                the field of the one declared `stream` rule.
            scope: fields selecting the stream's frames, e.g. ``{"room": "lobby"}``;
                None: taken from ``message`` for the stream rule's ``per`` field, else
                every frame with the sequence field.
            after_field: the field of ``message`` that carries the last number seen.
            done: the frame ending the replay: a mapping of fields or a predicate.
            head_field: the done frame's field naming the stream's head (None: none).
            reconnect: False when the test reconnected the client itself.

        Raises:
            ValueError: a bad argument (one line naming it).
            WsTimeoutError: the done frame did not come within the recv timeout.
        """
        checks = next((r for r in self.rules if isinstance(r, ReplayChecks)), None)
        if checks is None:
            checks = ReplayChecks()
            self.add_rule(checks)
        streams = [rule for rule in self.rules if isinstance(rule, StreamRule)]
        if sequence is None:
            fields = {rule.sequence for rule in streams}
            if len(fields) != 1:
                raise ValueError(
                    "ws_isolation.resume(): give sequence= (the stream's sequence field): "
                    f"{len(fields)} stream rules declare one"
                )
            (sequence,) = fields
        try:
            return await resume_stream(
                client,
                message,
                sequence=sequence,
                scope=scope,
                after_field=after_field,
                done=done,
                head_field=head_field,
                reconnect=reconnect,
                streams=streams,
                checks=checks,
            )
        except ValueError as err:
            raise ValueError(f"ws_isolation.resume(): {err}") from None

    @property
    def expecting_violations(self) -> bool:
        """True once the test declared it provokes violations (`expect_violations`)."""
        return self._expected

    # -- what a test sets ------------------------------------------------------------------

    def configure(
        self,
        *,
        taint: bool | None = None,
        identity: bool | None = None,
        allow: Iterable[str] | None = None,
        allow_patterns: Iterable[str | re.Pattern[str]] | None = None,
        markers: Mapping[UserIdentity | str, str | Iterable[str]] | None = None,
        taint_min_length: int | None = None,
        untainted_keys: Iterable[str] | None = None,
    ) -> None:
        """Set this test's options; call it at the start of the test.

        The same options as ``@pytest.mark.websocket_security(...)`` arguments, with the
        names of `IsolationDetector`'s constructor: ``taint=False`` for a protocol that
        broadcasts user text on purpose (a chat room), ``identity=False``, ``allow``
        (values legitimately shared), ``allow_patterns`` (regexes matching a whole
        marker), ``markers`` (``{user or id: marker or [markers]}``, extra markers
        owned by a user), ``taint_min_length``, ``untainted_keys``. Omitted options are
        left as they are. The switches govern markers filed before the call too (see
        `IsolationDetector.configure`).

        Raises:
            ValueError: a value of the wrong kind (one line naming the option).
        """
        given = {
            name: value
            for name, value in (
                ("taint", taint),
                ("identity", identity),
                ("allow", allow),
                ("allow_patterns", allow_patterns),
                ("markers", markers),
                ("taint_min_length", taint_min_length),
                ("untainted_keys", untainted_keys),
            )
            if value is not None
        }
        try:
            options = read_isolation_options(given)
        except ValueError as err:
            raise ValueError(f"ws_isolation.configure(): {err}") from None
        self.detector.configure(options)

    def allow(self, *values: str) -> None:
        """Values legitimately shared between users: never violations."""
        self.detector.allow(*values)

    def allow_pattern(self, pattern: str | re.Pattern[str]) -> None:
        """Markers the regex fully matches are never violations."""
        self.detector.allow_pattern(pattern)

    def register(self, user: UserIdentity | str, marker: str) -> None:
        """Make ``marker`` belong to ``user`` (a `TestUser` or a user id)."""
        self.detector.register(user, marker)

    def add_rule(self, rule: FrameRule) -> FrameRule:
        """Check ``rule`` on every frame of every client the test watches, from now
        on (clients already watched too); its findings fail the test as leaks do.

        Returns the rule, for the test to read its findings or timeline.
        """
        if rule not in self.rules:
            self.rules.append(rule)
            if self._attach is not None:
                self._attach(rule)
        return rule

    def bind(self, attach: Callable[[FrameRule], None]) -> None:
        """The plugin's watch: how a rule added later reaches the watched clients."""
        self._attach = attach

    # -- scope rules (entitlement) -------------------------------------------------------

    def scope(
        self,
        name: str,
        *,
        field: str | None = None,
        join: ScopeSignals = (),
        leave: ScopeSignals = (),
        path: str | None = None,
        grace: float = 0.25,
    ) -> ScopeRule:
        """Declare what a connection may see: every received frame whose ``field``
        names a value of scope ``name`` the receiver is not entitled to at that moment
        fails the test, with the receiver's entitlement timeline (`ScopeRule`).

        Entitlements come from ``client.entitle(room=...)`` / ``client.revoke(...)``
        and from what the rule learns: ``join``/``leave`` signals (a mapping of fields
        matched in either direction, a `Signal`, a callable, or a list of them) and
        ``path`` (a template like ``"/rooms/{room}"`` matched against each client's URL
        path). ``grace``: seconds a revoke from a sent frame or an explicit revoke
        waits (frames in flight); a revoke from a received frame is immediate.

        Raises:
            ValueError: a bad argument (one line naming it).
        """
        try:
            rule = ScopeRule(name, field=field, join=join, leave=leave, path=path, grace=grace)
        except ValueError as err:
            raise ValueError(f"ws_isolation.scope(): {err}") from None
        self.add_rule(rule)
        return rule

    def expect_violations(self) -> None:
        """Declare that this test provokes violations and asserts on them itself.

        Raises:
            RuntimeError: under ``websocket_security``, where every violation fails.
        """
        if self.strict:
            raise RuntimeError(
                "expect_violations() is not allowed in a websocket_security test: "
                "there every isolation violation fails the test"
            )
        self._expected = True

    # -- what the plugin asks ------------------------------------------------------------

    def _unreported(self) -> str | None:
        count = self.violation_count
        if self._expected or count <= self._reported:
            return None
        self._reported = count
        return self.report()

    def nothing_checked(self) -> NothingChecked | None:
        """The finding when this test's detector verified nothing; None when it did,
        or when the guard was not told what the test used (`ClientsSeen`)."""
        if self._clients_seen is None:
            return None
        clients, connected = self._clients_seen()
        # A rule that judged frames is a check: the detector holding no marker (a
        # protocol of integers) is then not "nothing checked". A rule that never
        # applied is, whatever the detector found to look for.
        idle = [(rule.name, rule.nothing_checked()) for rule in self.rules]
        idle_rules = [f"{name}: {why}" for name, why in idle if why is not None]
        if idle_rules and clients and connected:
            return NothingChecked("isolation", "an isolation rule", "; ".join(idle_rules))
        nothing_to_look_for = self.detector.nothing_to_look_for()
        if self.rules and nothing_to_look_for is not None and len(idle_rules) < len(idle):
            nothing_to_look_for = None
        return isolation_nothing_checked(
            checks=self.detector.checks,
            clients=clients,
            connected=connected,
            nothing_to_look_for=nothing_to_look_for,
        )

    def verdict(self) -> str | None:
        """After the test body: the report of violations not expected; None if none.

        A report returned here fails the test (or joins its own failure), so the
        teardown's verdict will not fail it again. A strict guard whose detector
        checked nothing (`nothing_checked`) returns that finding: a security test
        that verified nothing fails rather than passing green.
        """
        report = self._unreported()
        if report is not None:
            self._failed_in_call = True
            return report
        if self.strict and not self.failed_vacuous:
            finding = self.nothing_checked()
            if finding is not None:
                self.failed_vacuous = True
                return f"websocket_security: {finding}"
        return None

    def teardown_verdict(self) -> tuple[str | None, str | None]:
        """At teardown: ``(failure, note)`` for violations found since `verdict`.

        ``failure`` is the report when these violations are the test's first (a leak
        that showed only after the body, e.g. in frames received late): the teardown
        must fail with it. ``note`` is the report when the body's verdict already
        failed the test: the later frames of the same leak, to add to the test's
        report without failing it twice. Both None when nothing new was found.
        """
        for rule in self.rules:
            rule.finish()
        report = self._unreported()
        if report is None:
            return None, None
        if self._failed_in_call:
            return None, report
        return report, None

    @property
    def failed(self) -> bool:
        """True once a verdict reported violations (the test failed on isolation)."""
        return self._failed_in_call or (not self._expected and self._reported > 0)

    # -- beyond content: differential runs and races ------------------------------------
    # The runs are asyncio (`isolation/runs.py`), imported when first used: this module
    # stays pure. The plugin's ``ws_isolation`` fixture gives the guard its clients.

    #: Where the guard's own clients come from (`provide_clients`); None until given.
    _client_source: ClientSource | None = None

    def provide_clients(self, source: ClientSource) -> None:
        """The plugin's clients for `differential` and `race` (users, server, settings,
        each client watched by the test)."""
        self._client_source = source

    def _clients(self, what: str) -> ClientSource:
        if self._client_source is None:
            raise RuntimeError(
                f"ws_isolation.{what}() needs the plugin's clients: use the ws_isolation "
                "fixture (an IsolationGuard made by hand has none)"
            )
        return self._client_source

    async def differential(
        self,
        scenario: Scenario,
        users: int | Sequence[TestUser] = 5,
        *,
        settle: float = DEFAULT_SETTLE_S,
        normalise: FrameNormaliser | None = None,
        ignore: Iterable[str] = (),
        counter_keys: Sequence[str] = COUNTER_KEYS,
        timeout: float | None = None,  # noqa: ASYNC109 - a scenario's bound, not a wait's
        **options: Any,
    ) -> DifferentialResult:
        """Run ``scenario(client, index)`` for each user alone, then for all at once,
        and compare each user's concurrent stream with its solo stream.

        Frames are normalised first (``normalise`` on each frame, None drops it; keys
        in ``ignore`` removed; values of ``counter_keys``, uuids, hex ids and
        timestamps replaced: `normalise_frame`). Extra frames are crosstalk, missing
        ones loss, moved ones an order bug. Each run waits for its streams to go quiet
        (no frame for ``settle`` seconds, at most the recv timeout), then closes its
        clients. ``options`` go to every client as ``ws_client_factory`` takes them;
        ``path_params`` may be a factory of the user's index (per-room endpoints).

        The result is added as a rule (`add_rule`): its findings are in `report`,
        `violation_count` and the test's verdict. Unless the test `expect_violations`,
        a finding also raises here, at once, with each user's diff.

        Raises:
            IsolationViolationError: a user's concurrent stream differs from its solo one.
            WsResilienceError: a solo run failed (no baseline to compare with).
            ValueError: a bad argument (one line naming it).
        """
        __tracebackhide__ = True  # the failure is the diff, not this method's source
        from pytest_ws_resilience.isolation.runs import run_differential

        result = await run_differential(
            self._clients("differential"),
            scenario,
            users,
            settle=settle,
            normalise=normalise,
            ignore=ignore,
            counter_keys=counter_keys,
            timeout=timeout,
            options=options,
        )
        self.add_rule(result)
        if not result.ok and not self._expected:
            raise IsolationViolationError(result.report())
        return result

    async def race(
        self,
        action: Action,
        users: int | Sequence[TestUser] = 20,
        *,
        rounds: int = DEFAULT_RACE_ROUNDS,
        seed: int | None = None,
        jitter: float = DEFAULT_RACE_JITTER_S,
        settle: float = DEFAULT_SETTLE_S,
        timeout: float | None = None,  # noqa: ASYNC109 - an action's bound, not a wait's
        **options: Any,
    ) -> RaceResult:
        """Race ``users`` fresh clients, ``rounds`` times: each round releases their
        connects together, then ``action(client, index)`` together, each client after
        its own seeded delay in ``[0, jitter]``, waits for the streams to go quiet, and
        checks what the guard found (detector, rules) and whether an action failed.

        The first failing round stops the run with a line naming it and its seed:
        ``race(..., seed=<that seed>, rounds=1)`` replays its jitter. The base seed is
        printed always (random when ``seed`` is None). ``options`` go to every client
        as ``ws_client_factory`` takes them (``path_params`` may be a factory of the
        index).

        Raises:
            IsolationViolationError: a round found something (unless the test
                `expect_violations`: then the `RaceResult` says so).
            ValueError: a bad argument (one line naming it).
        """
        __tracebackhide__ = True  # the failure is the report and the seed line
        from pytest_ws_resilience.client.jitter import check_jitter, check_seed, new_base_seed
        from pytest_ws_resilience.isolation.runs import run_race

        base = new_base_seed() if seed is None else check_seed(seed)
        spread = check_jitter(jitter)
        count = users if isinstance(users, int) else len(users)
        print(
            f"ws_isolation.race: {count} users x {rounds} round(s), seed {base}, "
            f"jitter {spread * 1000:g} ms"
        )
        result = await run_race(
            self._clients("race"),
            action,
            users,
            rounds=rounds,
            seed=base,
            jitter=spread,
            settle=settle,
            findings=lambda: self.violation_count,
            report=self.report,
            timeout=timeout,
            options=options,
        )
        print(f"ws_isolation.race: {result.replay_line()}")
        if result.caught and not self._expected:
            raise IsolationViolationError(result.failure(), self.detector.violations)
        return result
