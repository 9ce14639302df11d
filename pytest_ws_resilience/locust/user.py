"""`WsUser`: a Locust ``User`` that plays a `Scenario` with this package's client.

Runs only inside Locust's processes (importing Locust monkey-patches the process with
gevent): a locustfile imports it, and so does ours (`pytest_ws_resilience.locust.
locustfile`, what ``ws_storm.distributed`` and ``ws-resilience-load`` run).

Each user greenlet mints a `TestUser` with the run's `TokenFactory` (settings resolved
as the plugin resolves them: `pytest_ws_resilience.locust.spec.worker_settings`), and
hands the scenario to the worker's one asyncio loop (`LoopThread`), where the shared
player (`pytest_ws_resilience.load.player.play`) plays it on a `WsClient`. Each
`StepOutcome` comes back to the hub's thread as a Locust request event: request type
``WS``, name ``connect`` / ``rt:<label>`` / ``contract:<label>``, the step's time, and
on failure ``[kind] message`` (redacted). A user whose connection dropped (kinds
``reset``, ``closed``, ``refused``) replays the scenario after the settings' backoff,
``reconnects`` times. Every user of a worker is watched by one `IsolationDetector`
(the detector lives on the loop's thread, as the clients do): a violation is a failure
event named ``isolation`` carrying the report.

The end of a run: a user plays its scenario once (``repeat = False``), idles until the
run ends (a stopped user would be replaced by Locust's spawner during the ramp), and
tells the master (or the local runner) so; when every user of the run has finished,
the master asks each worker to flush its statistics, waits (bounded) for their answers,
and stops the run: a run ends when its users are done, ``run_time`` is only its bound.
When it quits, the master writes its statistics document (`pytest_ws_resilience.locust.
stats`) to ``--ws-results``.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import gevent  # type: ignore[import-untyped]
from locust import User, constant, events, task
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from pytest_ws_resilience.client.bounds import handshakes_bound
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.violation import IsolationViolation, format_report
from pytest_ws_resilience.load.player import StepOutcome, play
from pytest_ws_resilience.load.scenario import Close, Connect, Hold, Scenario, Think
from pytest_ws_resilience.locust.bridge import LoopThread
from pytest_ws_resilience.locust.spec import (
    PROJECT_DIR_ENV,
    RESULTS_ENV,
    SPEC_ENV,
    SPEC_OPTION,
    RunSpec,
    worker_settings,
)
from pytest_ws_resilience.locust.stats import (
    CONNECT,
    ISOLATION,
    REQUEST_TYPE,
    RUN_ROUTE,
    failure_text,
)
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.servers.under_test import token_factory_for

if TYPE_CHECKING:
    from locust.env import Environment

__all__ = ["DROPPED_KINDS", "WsUser"]

#: Error kinds of a connection that dropped: the user replays after a backoff.
DROPPED_KINDS = frozenset({"reset", "closed", "refused"})
# Custom messages between workers and the master.
_DONE = "ws_done"
_FLUSH = "ws_flush"
_FLUSHED = "ws_flushed"
# How long a finished user sleeps at a time until its run ends.
_DONE_IDLE_S = 60.0
# How long the master waits for the workers' last statistics once every user is done.
_FLUSH_WAIT_S = 10.0
_SLACK_S = 1.0


def _options(parser: Any) -> None:
    parser.add_argument(
        "--ws-spec",
        dest=SPEC_OPTION,
        env_var=SPEC_ENV,
        default="",
        help="pytest-ws-resilience: the run's spec (set by ws_storm.distributed / "
        "ws-resilience-load; travels to the workers)",
    )
    parser.add_argument(
        "--ws-results",
        dest="ws_results",
        env_var=RESULTS_ENV,
        default="",
        help="pytest-ws-resilience: the master writes its statistics document here",
        include_in_web_ui=False,
    )


def _option(environment: Environment, name: str) -> str:
    options = environment.parsed_options
    return str(getattr(options, name, "") or "") if options is not None else ""


def _play_bound(scenario: Scenario, settings: WsSettings) -> float:
    """The most one play of ``scenario`` may take: every handshake the client may try,
    each wait's bound, every hold and think; a backstop over the player's own bounds."""
    methods = len(settings.effective_auth_methods)
    # The workers' clients do not retry (`_Worker.play` replays with backoff instead).
    bound = handshakes_bound(methods, 0, settings) + settings.close_timeout.value + _SLACK_S
    for step in scenario.steps:
        if isinstance(step, Hold):
            bound += step.seconds
        elif isinstance(step, Think):
            bound += step.seconds + step.jitter
        elif not isinstance(step, Connect | Close):
            bound += settings.recv_timeout.value + _SLACK_S
    return bound


@dataclass
class _Worker:
    """What one Locust process shares between its users: the spec, the settings, the
    tokens, the asyncio loop and the isolation detector."""

    environment: Environment
    spec: RunSpec | None
    settings: WsSettings
    tokens: TokenFactory
    loop: LoopThread
    detector: IsolationDetector | None
    numbers: itertools.count[int] = field(default_factory=itertools.count)
    #: Violations found, by receiving user, until that user's play ends.
    pending_violations: dict[str, list[IsolationViolation]] = field(default_factory=dict)

    _current: ClassVar[_Worker | None] = None

    @classmethod
    def of(cls, environment: Environment) -> _Worker:
        """This process's worker state, made at its first user (the spec has arrived
        with the master's spawn message by then)."""
        if cls._current is None or cls._current.environment is not environment:
            encoded = _option(environment, SPEC_OPTION)
            spec = RunSpec.decode(encoded) if encoded else None
            # The worker's own checkout, if it says so (not an option: the master's
            # options overwrite a worker's).
            project = os.environ.get(PROJECT_DIR_ENV) or None
            if spec is not None:
                settings = worker_settings(spec, os.environ, project)
            else:
                settings = WsSettings()
            isolation = spec.isolation if spec is not None else True
            cls._current = cls(
                environment=environment,
                spec=spec,
                settings=settings,
                tokens=token_factory_for(settings),
                loop=LoopThread().start(),
                detector=IsolationDetector() if isolation else None,
            )
        return cls._current

    def url(self, user_class: type[WsUser]) -> str:
        url = self.spec.url if self.spec is not None else (user_class.host or "")
        url = url or (self.environment.host or "")
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(
                f"{user_class.__name__}: no ws:// URL to connect to (give --host ws://... "
                f"or a run spec), got {redact(url)!r}"
            )
        return url

    # -- in the hub's thread ----------------------------------------------------------

    def fire(self, outcome: StepOutcome) -> None:
        """One outcome as a Locust request event."""
        exception = None
        if outcome.error is not None:
            kind = outcome.error_kind or "other"
            exception = failure_text(kind, f"{outcome.name}: {outcome.error}")
        self.environment.events.request.fire(  # type: ignore[no-untyped-call]
            request_type=REQUEST_TYPE,
            name=outcome.name,
            response_time=outcome.elapsed_ms,
            response_length=outcome.response_length,
            exception=exception,
            context={},
        )

    def fire_isolation(self, report: str) -> None:
        self.environment.events.request.fire(  # type: ignore[no-untyped-call]
            request_type=REQUEST_TYPE,
            name=ISOLATION,
            response_time=0,
            response_length=0,
            exception=failure_text(ISOLATION, report),
            context={},
        )

    def play(self, user_class: type[WsUser], scenario: Scenario) -> bool:
        """Play ``scenario`` as one fresh user, replaying after a dropped connection."""
        index = next(self.numbers)
        user = self.tokens.user()
        url = self.url(user_class)
        reconnects = user_class.reconnects
        if reconnects is None:
            reconnects = self.spec.reconnects if self.spec is not None else 0
        delays = list(self.settings.backoff.delays(reconnects))
        bound = _play_bound(scenario, self.settings)
        for attempt in range(reconnects + 1):
            kinds: list[str] = []
            try:
                ok = self.loop.run(
                    functools.partial(self._play_once, scenario, user, url, index, kinds),
                    timeout=bound,
                )
            except TimeoutError as err:
                self.fire(StepOutcome("scenario", "scenario", bound * 1000, err, "timeout"))
                return False
            if ok:
                return True
            if attempt == reconnects or not kinds or kinds[-1] not in DROPPED_KINDS:
                return False
            gevent.sleep(delays[attempt])
        return False  # pragma: no cover - the loop returns

    # -- in the loop's thread ---------------------------------------------------------

    async def _play_once(
        self, scenario: Scenario, user: Any, url: str, index: int, kinds: list[str]
    ) -> bool:
        client = WsClient(
            url,
            user=user,
            settings=self.settings,
            connect_retries=0,  # a drop is reported, then replayed by `play` with backoff
            log_size=64,
            name=f"locust#{index}:{user.id}",
        )
        if self.detector is not None:
            self.detector.attach(client)

        def report(outcome: StepOutcome) -> None:
            if outcome.error_kind is not None:
                kinds.append(outcome.error_kind)
            self.loop.post(self.fire, outcome)

        try:
            return await play(scenario, client, report=report, settings=self.settings, index=index)
        finally:
            if not client.closed:
                await client.close()
            if self.detector is not None:
                self.detector.detach(client)
                self._report_violations(user.id)

    def _report_violations(self, receiver: str) -> None:
        """Report what ``receiver`` was sent of other users' data, as one failure event
        (the detector's kept violations are moved out, so it never fills up)."""
        detector = self.detector
        assert detector is not None
        for violation in detector.violations:
            self.pending_violations.setdefault(violation.receiver, []).append(violation)
        dropped = detector.violations_dropped
        detector.reset()
        mine = self.pending_violations.pop(receiver, [])
        if not mine and not dropped:
            return
        report = format_report(
            mine,
            dropped=dropped,
            checks=detector.checks,
            markers=detector.marker_count,
            users=len(detector.users),
        )
        self.loop.post(self.fire_isolation, redact(report))


class WsUser(User):
    """A Locust user that plays a `Scenario` over a real, authenticated `WsClient`.

    Subclass it in a locustfile and give it a ``scenario`` (or let the run's spec give
    one: ``ws_storm.distributed``, ``ws-resilience-load --scenario``)::

        class Chat(WsUser):
            scenario = Scenario("chat").connect().send({"type": "ping"}).expect(type="pong")

    Class attributes:
        scenario: what each user plays; None: the run's.
        repeat: play again after each play (Locust's usual loop) instead of once.
        reconnects: replays after a dropped connection (None: the run's, else 0).
    """

    abstract = True
    scenario: Scenario | None = None
    repeat: bool = False
    reconnects: int | None = None
    wait_time = constant(0)

    @task
    def play_scenario(self) -> None:
        try:
            worker = _Worker.of(self.environment)
            scenario = self.scenario or (worker.spec.scenario if worker.spec else None)
            if scenario is None:
                raise ValueError(
                    f"{type(self).__name__} has no scenario: set its scenario attribute or "
                    "run it with a spec (ws_storm.distributed, ws-resilience-load --scenario)"
                )
            ok = worker.play(type(self), scenario)
        except Exception as err:
            # Not the server's doing (a bad configuration on this machine, a bug in a
            # message factory): counted as the user's failure, and the user is done,
            # so that a run still ends when its users are.
            self.environment.events.request.fire(
                request_type=REQUEST_TYPE,
                name="scenario",
                response_time=0,
                response_length=0,
                exception=failure_text("other", f"{type(err).__name__}: {err}"),
                context={},
            )
            ok = False
        _user_done(self.environment, ok)
        if not self.repeat:
            # Done, but kept alive: while the ramp runs, Locust's spawner tops a worker up
            # to its share of users by counting the live ones, so a user that stopped
            # would be replaced, and the run would play more users than it was given
            # (3,036 of 3,000 once). The run ends when every user is done (`_finish`) or
            # at its run_time, and that kills this greenlet.
            while True:
                gevent.sleep(_DONE_IDLE_S)


# -- the end of a run -----------------------------------------------------------------


@dataclass
class _Tally:
    """The master's (or a local runner's) count of finished users and worker shares."""

    target: int | None = None
    finished: int = 0
    passed: int = 0
    started_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None
    workers: dict[str, dict[str, int]] = field(default_factory=dict)
    flushed: set[str] = field(default_factory=set)
    finishing: bool = False
    done: bool = False
    run_id: str = ""

    def reset(self, target: int | None, run_id: str = "") -> None:
        """A new run starts (Locust's ``test_start``): forget the last one."""
        self.run_id = run_id
        self.target, self.finished, self.passed = target, 0, 0
        self.started_at, self.ended_at = time.monotonic(), None
        self.workers, self.flushed = {}, set()
        self.finishing = self.done = False

    def add_report(self, worker: str, stats: list[dict[str, Any]]) -> None:
        share = self.workers.setdefault(worker, {"connects": 0, "requests": 0, "failures": 0})
        for entry in stats:
            if entry.get("method") != REQUEST_TYPE:
                continue
            share["requests"] += int(entry.get("num_requests", 0))
            share["failures"] += int(entry.get("num_failures", 0))
            if entry.get("name") == CONNECT:
                share["connects"] += int(entry.get("num_requests", 0))


_TALLY = _Tally()


def _user_done(environment: Environment, ok: bool) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.send_message(_DONE, {"ok": ok})
    else:
        _count_done(environment, ok)


def _count_done(environment: Environment, ok: bool) -> None:
    _TALLY.finished += 1
    _TALLY.passed += int(ok)
    if _TALLY.target is not None and _TALLY.finished >= _TALLY.target and not _TALLY.finishing:
        _TALLY.finishing = True
        gevent.spawn(_finish, environment)


def _finish(environment: Environment) -> None:
    """Every user is done: collect the workers' last statistics, then stop the run."""
    runner = environment.runner
    _TALLY.ended_at = time.monotonic()
    if isinstance(runner, MasterRunner):
        workers = {client.id for client in runner.clients.all}
        runner.send_message(_FLUSH)
        with gevent.Timeout(_FLUSH_WAIT_S, False):
            while not workers <= _TALLY.flushed:
                gevent.sleep(0.05)
    options = environment.parsed_options
    if runner is None:
        return
    if options is not None and getattr(options, "headless", False):
        _TALLY.done = True
        runner.quit()
    else:  # a master serving runs (web UI): stopped, ready for the next run
        runner.stop()
        _TALLY.done = True


def _document(environment: Environment) -> dict[str, Any]:
    stats = environment.stats
    ended = _TALLY.ended_at if _TALLY.ended_at is not None else time.monotonic()
    return {
        "stats": [entry.serialize() for entry in stats.entries.values()],
        "errors": list(stats.serialize_errors().values()),
        "workers": _TALLY.workers,
        "users_finished": _TALLY.finished,
        "users_passed": _TALLY.passed,
        "target_users": _TALLY.target,
        "duration_s": ended - _TALLY.started_at,
        "done": _TALLY.done,
    }


def _on_init(environment: Environment, web_ui: Any = None, **_: Any) -> None:
    runner = environment.runner
    if web_ui is not None and isinstance(runner, MasterRunner | LocalRunner):
        _serve_runs(environment, web_ui)
    encoded = _option(environment, SPEC_OPTION)
    if isinstance(runner, MasterRunner | LocalRunner):
        _TALLY.target = RunSpec.decode(encoded).users if encoded else None
    if isinstance(runner, MasterRunner):

        def on_done(environment: Environment, msg: Any, **_: Any) -> None:
            _count_done(environment, bool(msg.data.get("ok")))

        def on_flushed(environment: Environment, msg: Any, **_: Any) -> None:
            _TALLY.flushed.add(msg.node_id)

        runner.register_message(_DONE, on_done)
        runner.register_message(_FLUSHED, on_flushed)

        def on_report(client_id: str, data: dict[str, Any]) -> None:
            _TALLY.add_report(client_id, list(data.get("stats", ())))

        environment.events.worker_report.add_listener(on_report)  # type: ignore[no-untyped-call]
    elif isinstance(runner, WorkerRunner):

        def on_flush(environment: Environment, msg: Any, **_: Any) -> None:
            send_stats: Callable[[], None] | None = getattr(runner, "_send_stats", None)
            if send_stats is not None:
                send_stats()
            runner.send_message(_FLUSHED, {})

        runner.register_message(_FLUSH, on_flush)

    def on_test_start(environment: Environment, **_: Any) -> None:
        encoded_now = _option(environment, SPEC_OPTION)
        spec = RunSpec.decode(encoded_now) if encoded_now else None
        if spec is None:
            _TALLY.reset(_TALLY.target)
        else:
            _TALLY.reset(spec.users, spec.run_id)

    if not isinstance(runner, WorkerRunner):
        environment.events.test_start.add_listener(on_test_start)  # type: ignore[no-untyped-call]


def _serve_runs(environment: Environment, web_ui: Any) -> None:
    """A master with a web UI serves runs to ``ws_storm.distributed`` (``--ws-locust-
    master``): the test starts one with Locust's own ``POST /swarm`` (the spec in the
    form) and reads its progress and statistics here."""
    from flask import jsonify

    def run_state() -> Any:
        runner = environment.runner
        workers = runner.worker_count if isinstance(runner, MasterRunner) else 1
        return jsonify(
            {
                "state": runner.state if runner is not None else "none",
                "workers": workers,
                "run_id": _TALLY.run_id,
                "done": _TALLY.done,
                "document": _document(environment),
            }
        )

    web_ui.app.add_url_rule(RUN_ROUTE, "ws_resilience_run", run_state)


def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        current = _Worker._current
        if current is not None:
            current.loop.stop()
        return
    path = _option(environment, "ws_results")
    if path:
        if isinstance(environment.runner, LocalRunner):
            _TALLY.workers.setdefault("local", {"connects": 0, "requests": 0, "failures": 0})
            entry = environment.stats.entries.get((CONNECT, REQUEST_TYPE))
            if entry is not None:
                _TALLY.workers["local"]["connects"] = entry.num_requests
        Path(path).write_text(json.dumps(_document(environment)), encoding="utf-8")


# Registered at import: a locustfile that imports `WsUser` gets the options, the end of
# run accounting and the statistics document.
events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]
