"""The hostile review's input table, redone: bad inputs, and what each one led to.

Usage: ``python benchmarks/hostile_inputs.py [--jobs N] [--timeout S] [--only TEXT]``

Every input below is wrong. Each is tried as a user meets it: configuration values in a
temporary ``pyproject.toml``, command-line options, environment variables and marker
arguments in a real ``pytest -p ws_resilience`` subprocess; fixture arguments in a test
of such a run; public API calls in this process. Each outcome is classified:

- ``clear``: refused with one line naming the input (a usage error, exit 4; a
  collection error; a failed test whose error is one of the package's one-line errors),
  and no traceback;
- ``traceback``: refused, but with a traceback or another exception than ours
  (``TypeError``, ``AttributeError``, ``OverflowError``...), or a multi-line message;
- ``hang``: still running after ``--timeout`` seconds (the bound of every case);
- ``silent``: taken, as if it were fine (exit 0, a passing test, a call that returned).

The table and the totals are printed; the exit status is 1 unless every outcome is
``clear`` (the must-show of issue 17: zero tracebacks, hangs and silent acceptances).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTCOMES = ("clear", "traceback", "hang", "silent")
PYTEST_TABLE = '[tool.pytest.ini_options]\nasyncio_default_fixture_loop_scope = "function"\n'
ONE_TEST = "def test_ok():\n    pass\n"
# Exceptions that are ours or a user's plain ValueError with our one line.
_OUR_ERROR = re.compile(r"\b(ValueError|Ws\w*Error|AsgiApp\w*Error|Failed): \S")
_FOREIGN = re.compile(
    r"\b(TypeError|AttributeError|OverflowError|KeyError|IndexError|ZeroDivisionError|"
    r"RecursionError|AssertionError|UnboundLocalError|NameError)\b"
)


@dataclass
class Case:
    """One bad input: where it goes, how it is shown, and how it is tried."""

    kind: str
    label: str
    toml: str = ""
    args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    tests: str = ONE_TEST
    ini: str = ""
    call: Callable[[], Any] | None = None


@dataclass
class Result:
    case: Case
    outcome: str
    detail: str
    seconds: float


# -- the inputs ---------------------------------------------------------------------------


def _config(label: str, toml: str) -> Case:
    return Case("config", label, toml=f"[tool.ws_resilience]\n{toml}\n")


def _test(label: str, body: str, fixtures: str, *, is_async: bool = True) -> Case:
    head = "@pytest.mark.asyncio\nasync def" if is_async else "def"
    tests = f"import pytest\n\n{head} test_bad({fixtures}):\n    {body}\n"
    return Case("fixture", label, tests=tests)


def _marker(label: str, marker: str) -> Case:
    tests = f"import pytest\n\n@pytest.mark.{marker}\ndef test_marked():\n    pass\n"
    return Case("marker", label, tests=tests)


CONFIG_CASES = [
    _config("recv_timeout = 1e308", "recv_timeout = 1e308"),
    _config("recv_timeout = nan", "recv_timeout = nan"),
    _config("recv_timeout = inf", "recv_timeout = inf"),
    _config("recv_timeout = -1", "recv_timeout = -1"),
    _config("recv_timeout = 0", "recv_timeout = 0"),
    _config('recv_timeout = "10"', 'recv_timeout = "10"'),
    _config("close_timeout = 1e308", "close_timeout = 1e308"),
    _config("connect_timeout = 1e-7", "connect_timeout = 1e-7"),
    _config("agent_timeout = 1e308", "recv_timeout = 1e308\nagent_timeout = 1e308"),
    _config("backoff_base = nan", "backoff_base = nan"),
    _config("backoff_cap = 1e308", "backoff_cap = 1e308"),
    _config("connect_retries = 2**63-1", "connect_retries = 9223372036854775807"),
    _config("connect_retries = -1", "connect_retries = -1"),
    _config("connect_retries = 1.5", "connect_retries = 1.5"),
    _config("max_message_size = 0", "max_message_size = 0"),
    _config("max_message_size = 1e308", "max_message_size = 1e308"),
    _config("max_message_size = 2**63-1", "max_message_size = 9223372036854775807"),
    _config("app_share = 1", "app_share = 1"),
    _config("app_share = true (no app)", "app_share = true"),
    _config('app_subprocess = "yes"', 'app_subprocess = "yes"'),
    _config('app_lifespan = "maybe"', 'app = "json:dumps"\napp_lifespan = "maybe"'),
    _config('app = "nocolon"', 'app = "nocolon"'),
    _config("app_env = {A = 1}", 'app = "json:dumps"\napp_env = {A = 1}'),
    _config('url = "http://x"', 'url = "http://x"'),
    _config('url = "ws://127.0.0.1:99999"', 'url = "ws://127.0.0.1:99999"'),
    _config('path = "ws"', 'path = "ws"'),
    _config('auth_methods = ["magic"]', 'auth_methods = ["magic"]'),
    _config("auth_methods = []", "auth_methods = []"),
    _config('jwt_secret = "s3cret"', 'jwt_secret = "s3cret"'),
    _config("recv_tmeout = 5 (typo)", "recv_tmeout = 5"),
    _config("envs = 5", "envs = 5"),
    _config("greeting = 5", "greeting = 5"),
    _config('headers = {Host = "x"}', 'headers = {Host = "x"}'),
    _config('origin = "nope"', 'origin = "nope"'),
    _config('compression = "yes"', 'compression = "yes"'),
    _config("services = 5", "services = 5"),
    _config("agent_timeout > recv_timeout", "recv_timeout = 10\nagent_timeout = 20"),
    _config('subprotocols = [""]', 'subprotocols = [""]'),
    _config('jwt_secret_env = "A B"', 'jwt_secret_env = "A B"'),
    Case(
        "config",
        "envs.qa.recv_timeout = nan",
        toml="[tool.ws_resilience.envs.qa]\nrecv_timeout = nan\n",
    ),
    Case(
        "config",
        "envs.qa.connect_retries = 1000",
        toml="[tool.ws_resilience.envs.qa]\nconnect_retries = 1000\n",
    ),
]

CLI_CASES = [
    Case("cli", "--ws-report=/proc/r.json", args=["--ws-report=/proc/r.json"]),
    Case("cli", "--ws-report=", args=["--ws-report="]),
    Case("cli", "--ws-report=/nonexistent/r.json", args=["--ws-report=/nonexistent/r.json"]),
    Case("cli", "--ws-report=. (a directory)", args=["--ws-report=."]),
    Case("cli", "--ws-report=/proc/self/status", args=["--ws-report=/proc/self/status"]),
    Case("cli", "--ws-env=nope", args=["--ws-env=nope"]),
    Case("cli", "--ws-env=LOCAL", args=["--ws-env=LOCAL"]),
    Case("cli", "--ws-url=http://127.0.0.1:1", args=["--ws-url=http://127.0.0.1:1"]),
    Case("cli", "--ws-url=ws://", args=["--ws-url=ws://"]),
    Case("cli", "--ws-path=noslash", args=["--ws-path=noslash"]),
    Case("cli", "--ws-app=json:dumps", args=["--ws-app=json:dumps"]),
    Case("cli", "--ws-app=json:decoder", args=["--ws-app=json:decoder"]),
    Case("cli", "--ws-app=json:dumps()", args=["--ws-app=json:dumps()"]),
    Case("cli", "--ws-app=no_such_mod_xyz:app", args=["--ws-app=no_such_mod_xyz:app"]),
    Case("cli", "--ws-app=json:nope", args=["--ws-app=json:nope"]),
    Case("cli", "--ws-app=notapath", args=["--ws-app=notapath"]),
    Case(
        "cli",
        "--ws-app-lifespan=maybe",
        args=["--ws-app=json:dumps", "--ws-app-lifespan=maybe"],
    ),
    Case("cli", "--ws-server-cmd=", args=["--ws-server-cmd="]),
    Case("cli", "--ws-server-cmd='sleep 1' (no {port})", args=["--ws-server-cmd=sleep 1"]),
    Case(
        "cli",
        "--ws-server-cmd with --ws-url",
        args=["--ws-server-cmd=x {port}", "--ws-url=ws://127.0.0.1:1"],
    ),
    Case("cli", "--ws-chaos-seed=abc", args=["--ws-chaos-seed=abc"]),
    Case("env", "WS_REQUIRE_SERVICES=maybe", env={"WS_REQUIRE_SERVICES": "maybe"}),
    Case("env", "WS_ENV=nope", env={"WS_ENV": "nope"}),
    Case("ini", 'ws_loop_scope = "module"', ini='ws_loop_scope = "module"\n'),
    Case("ini", 'ws_env = "nope"', ini='ws_env = "nope"\n'),
]

MARKER_CASES = [
    _marker('ws_env("nope")', 'ws_env("nope")'),
    _marker('ws_env("LOCAL")', 'ws_env("LOCAL")'),
    _marker("ws_env()", "ws_env()"),
    _marker("ws_env(5)", "ws_env(5)"),
    _marker('ws_env("")', 'ws_env("")'),
    _marker("ws_services()", "ws_services()"),
    _marker("ws_services(5)", "ws_services(5)"),
    _marker("websocket_security(5)", "websocket_security(5)"),
    _marker("websocket_security(taint_min_length=0)", "websocket_security(taint_min_length=0)"),
    _marker("websocket_security(bogus=1)", "websocket_security(bogus=1)"),
]

FIXTURE_CASES = [
    _test(
        "ws_user_factory(sub=...)", 'ws_user_factory(sub="a")', "ws_user_factory", is_async=False
    ),
    _test("ws_user_factory(id=5)", "ws_user_factory(id=5)", "ws_user_factory", is_async=False),
    _test("ws_client_factory(user='x')", 'await ws_client_factory(user="x")', "ws_client_factory"),
    _test(
        "ws_client_factory(bogus_option=1)",
        "await ws_client_factory(bogus_option=1)",
        "ws_client_factory",
    ),
    _test(
        "ws_client_factory(recv_timeout=nan)",
        'await ws_client_factory(recv_timeout=float("nan"))',
        "ws_client_factory",
    ),
    _test(
        "ws_client_factory(connect_retries=2**63-1)",
        "await ws_client_factory(connect_retries=2**63 - 1)",
        "ws_client_factory",
    ),
    _test(
        "ws_client.expect(timeout=nan)",
        'await ws_client.expect(type="never", timeout=float("nan"))',
        "ws_client",
    ),
    _test(
        "ws_client.expect(timeout=1e308)",
        'await ws_client.expect(type="never", timeout=1e308)',
        "ws_client",
    ),
    _test("ws_storm.connect(2, rate=1e-9)", "await ws_storm.connect(2, rate=1e-9)", "ws_storm"),
    _test("ws_storm.connect(0)", "await ws_storm.connect(0)", "ws_storm"),
    _test(
        "ws_storm.cycles(5, concurrency=0)", "await ws_storm.cycles(5, concurrency=0)", "ws_storm"
    ),
    _test("ws_storm.burst(1, 10**7)", "await ws_storm.burst(1, 10**7)", "ws_storm"),
    _test("ws_pool.acquire(user='x')", 'await ws_pool.acquire(user="x")', "ws_pool"),
]


def _api_cases() -> list[Case]:
    """Public API calls, made in this process (async ones in an event loop)."""
    from pytest_ws_resilience import (
        ConnectionPool,
        EventContract,
        TokenFactory,
        WsClient,
    )
    from pytest_ws_resilience.config.backoff import Backoff
    from pytest_ws_resilience.load.storm import Storm

    url = "ws://127.0.0.1:1/"
    nan = math.nan

    def client(**kwargs: Any) -> Callable[[], Any]:
        return lambda: WsClient(url, **kwargs)

    def storm(method: str, *args: Any, **kwargs: Any) -> Callable[[], Any]:
        return lambda: getattr(Storm(url, TokenFactory()), method)(*args, **kwargs)

    def api(label: str, call: Callable[[], Any]) -> Case:
        return Case("api", label, call=call)

    return [
        api("WsClient(recv_timeout=nan)", client(recv_timeout=nan)),
        api("WsClient(close_timeout=1e308)", client(close_timeout=1e308)),
        api("WsClient(connect_timeout=-1)", client(connect_timeout=-1)),
        api("WsClient(connect_retries=2**63-1)", client(connect_retries=2**63 - 1)),
        api("WsClient(bogus_option=1)", client(bogus_option=1)),
        api("WsClient(user='x')", client(user="x")),
        api("WsClient(token=42)", client(token=42)),
        api("WsClient(max_message_size=-1)", client(max_message_size=-1)),
        api("WsClient(log_size=0)", client(log_size=0)),
        api("WsClient(ping_interval=inf)", client(ping_interval=math.inf)),
        api("WsClient(open_timeout=5)", client(open_timeout=5)),
        api("WsClient('http://x')", lambda: WsClient("http://x")),
        api("EventContract(repeatable=5)", lambda: EventContract(["a"], repeatable=5)),
        api("EventContract([])", lambda: EventContract([])),
        api("EventContract(budgets={a: nan})", lambda: EventContract(["a"], budgets={"a": nan})),
        api("EventContract(budgets=[1])", lambda: EventContract(["a"], budgets=[1])),
        api("TokenFactory().user(sub=...)", lambda: TokenFactory().user(sub="x")),
        api("TokenFactory(lifetime_s=nan)", lambda: TokenFactory(lifetime_s=nan)),
        api("Backoff(base=nan)", lambda: Backoff(base=nan)),
        api("Backoff(cap=1e308)", lambda: Backoff(cap=1e308)),
        api("Storm.connect(2, rate=1e-9)", storm("connect", 2, rate=1e-9)),
        api("Storm.connect(2, rate=nan)", storm("connect", 2, rate=nan)),
        api("Storm.connect(10**9)", storm("connect", 10**9)),
        api("Storm.burst(1, 10**7)", storm("burst", 1, 10**7)),
        api("Storm.cycles(0)", storm("cycles", 0)),
        api("ConnectionPool(idle_timeout=nan)", lambda: ConnectionPool(idle_timeout=nan)),
        api("ConnectionPool(max_size=0)", lambda: ConnectionPool(max_size=0)),
        api(
            "ConnectionPool(health_check_timeout=1e308)",
            lambda: ConnectionPool(health_check_timeout=1e308),
        ),
    ]


# -- trying them ----------------------------------------------------------------------------


def _classify_run(case: Case, proc: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    output = proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    if "Traceback" in output or "INTERNALERROR" in output or _FOREIGN.search(output):
        first = next((ln for ln in output.splitlines() if _FOREIGN.search(ln)), "traceback")
        return "traceback", first.strip()
    if proc.returncode == 4:
        if len(errors) == 1:
            # pytest's own option parser puts its message on the line after "usage:".
            said = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
            return "clear", said[0] if said else errors[0].removeprefix("ERROR: ")
        return "traceback", f"exit 4 with {len(errors)} ERROR lines"
    if proc.returncode == 2 and "ERROR collecting" in output:
        lines = output.splitlines()
        start = next(i for i, ln in enumerate(lines) if "ERROR collecting" in ln)
        body = [ln for ln in lines[start + 1 :] if ln.strip() and not ln.startswith(("=", "_"))]
        return ("clear", body[0].strip()) if body else ("traceback", "collection error")
    if proc.returncode == 1:
        for line in output.splitlines():
            if _OUR_ERROR.search(line) and "FAILED" not in line:
                return "clear", line.split(": ", 1)[-1].strip()
        return "traceback", "a test failed without one of the package's errors"
    if proc.returncode == 0:
        return "silent", "exit 0: " + (proc.stdout.strip().splitlines() or ["no output"])[-1]
    return "traceback", f"exit {proc.returncode}"


def _run_pytest(case: Case, timeout: float) -> tuple[str, str]:
    with tempfile.TemporaryDirectory(prefix="ws-hostile-") as tmp:
        root = Path(tmp)
        ini = PYTEST_TABLE + case.ini
        (root / "pyproject.toml").write_text(ini + "\n" + case.toml, encoding="utf-8")
        (root / "test_hostile.py").write_text(case.tests, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WS_", "PYTEST_"))}
        env.update(case.env)
        command = [sys.executable, "-m", "pytest", "-p", "ws_resilience", "-q"]
        command += ["--tb=line", "-p", "no:cacheprovider", *case.args]
        try:
            proc = subprocess.run(
                command,
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            return "hang", f"still running after {timeout:g} s"
        return _classify_run(case, proc)


def _call_api(case: Case, timeout: float) -> tuple[str, str]:
    """Call in a thread of its own (a sync hang is bounded too), awaiting a coroutine
    under `asyncio.wait_for`."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            assert case.call is not None
            value = case.call()
            if asyncio.iscoroutine(value):
                value = asyncio.run(asyncio.wait_for(value, timeout))
            box["value"] = value
        except TimeoutError:
            box["hang"] = True
        except BaseException as err:  # classified below, whatever it is
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    if thread.is_alive() or box.get("hang"):
        return "hang", f"still running after {timeout:g} s"
    error = box.get("error")
    if error is None:
        return "silent", f"returned {type(box.get('value')).__name__}"
    message = str(error)
    from pytest_ws_resilience.errors import WsResilienceError

    ours = type(error) is ValueError or isinstance(error, WsResilienceError)
    if ours and message and "\n" not in message:
        return "clear", message
    return "traceback", f"{type(error).__name__}: {message.splitlines()[0] if message else ''}"


def _try(case: Case, timeout: float) -> Result:
    started = time.monotonic()
    if case.call is not None:
        outcome, detail = _call_api(case, timeout)
    else:
        outcome, detail = _run_pytest(case, timeout)
    return Result(case, outcome, detail, time.monotonic() - started)


def _print_table(results: Sequence[Result]) -> None:
    width = max(len(r.case.label) for r in results)
    print(f"{'kind':8} {'input':{width}} {'outcome':9} {'s':>5}  message")
    for r in results:
        detail = r.detail if len(r.detail) <= 110 else r.detail[:107] + "..."
        print(f"{r.case.kind:8} {r.case.label:{width}} {r.outcome:9} {r.seconds:5.1f}  {detail}")
    print()
    totals = {outcome: sum(r.outcome == outcome for r in results) for outcome in OUTCOMES}
    kinds = sorted({r.case.kind for r in results})
    per_kind = ", ".join(f"{k} {sum(r.case.kind == k for r in results)}" for k in kinds)
    print(f"inputs tried: {len(results)} ({per_kind})")
    print(
        f"clear one-line errors: {totals['clear']}, tracebacks: {totals['traceback']}, "
        f"hangs: {totals['hang']}, silent acceptances: {totals['silent']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="pytest runs at a time")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound of one case, s")
    parser.add_argument("--only", default="", help="only the inputs whose label holds TEXT")
    options = parser.parse_args(argv)
    cases = [*CONFIG_CASES, *CLI_CASES, *MARKER_CASES, *FIXTURE_CASES, *_api_cases()]
    cases = [c for c in cases if options.only in c.label]
    api = [c for c in cases if c.call is not None]
    runs = [c for c in cases if c.call is None]
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        run_results = list(pool.map(lambda c: _try(c, options.timeout), runs))
    results = run_results + [_try(c, options.timeout) for c in api]
    _print_table(results)
    return 0 if all(r.outcome == "clear" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
