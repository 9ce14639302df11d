"""``ws-resilience-load``: a distributed run by hand, one command per machine.

On the machine that leads the run (it needs no Locust worker of its own)::

    ws-resilience-load --master --bind-host 0.0.0.0 --port 5557 --expect-workers 6 \\
        --scenario myproject.load:CHAT --url wss://staging.example/ws --env staging \\
        --users 30000 --spawn-rate 500 --run-time 300

On each load machine (as many processes as it has cores)::

    ws-resilience-load --worker --master-host load-master.example --master-port 5557

or, on one machine, master and local workers at once: ``--workers N`` instead of
``--master`` / ``--expect-workers``. A master that serves runs to pytest
(``ws_storm.distributed`` with ``--ws-locust-master=HOST:WEB_PORT``) until interrupted::

    ws-resilience-load --master --bind-host 0.0.0.0 --web-port 8089 --web-host 0.0.0.0

The master reads the scenario (``module:attr``, imported from the current directory),
builds the run's spec (`RunSpec`, no key in it) and starts a headless Locust master
with our locustfile; the spec reaches the workers in Locust's spawn message. Keys never
travel: each worker reads them from its own environment, as the plugin does (the
profile's ``jwt_secret_env`` etc., or ``WS_RESILIENCE_SECRET``), with the
``[tool.ws_resilience]`` table of ``--project-dir`` (default: the current directory).
The master prints the run's `StormResult` and exits 1 when anything failed (0 else,
2 for a bad command line, 3 when the run could not run).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from pytest_ws_resilience.errors import WsConfigError, WsResilienceError
from pytest_ws_resilience.locust.distributed import DistributedRun, locust_command, run_distributed
from pytest_ws_resilience.locust.spec import PROJECT_DIR_ENV, SECRET_ENV, RunSpec

__all__ = ["PROG", "build_parser", "main"]

PROG = "ws-resilience-load"
#: Locust's default master port.
DEFAULT_PORT = 5557


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a pytest-ws-resilience scenario on Locust's distributed engine.",
    )
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--master", action="store_true", help="lead a run for remote workers")
    role.add_argument("--worker", action="store_true", help="play users for a master")
    role.add_argument(
        "--workers", type=int, metavar="N", help="lead a run with N local worker processes"
    )
    lead = parser.add_argument_group("the run (--master, --workers)")
    lead.add_argument("--scenario", metavar="MODULE:ATTR", help="the Scenario to play")
    lead.add_argument("--url", help="ws:// or wss:// URL of the server under test")
    lead.add_argument("--users", type=int, default=100, help="users in all; each plays once")
    lead.add_argument("--spawn-rate", type=float, default=100.0, help="users started per second")
    lead.add_argument("--run-time", type=float, default=300.0, help="seconds at most")
    lead.add_argument("--expect-workers", type=int, default=1, help="remote workers (--master)")
    lead.add_argument("--bind-host", default="127.0.0.1", help="master's address (--master)")
    lead.add_argument("--port", type=int, default=DEFAULT_PORT, help="master's port (--master)")
    lead.add_argument("--env", default=None, help="settings profile (default: WS_ENV or local)")
    lead.add_argument("--no-isolation", action="store_true", help="no isolation detector")
    lead.add_argument(
        "--reconnects", type=int, default=0, help="replays after a dropped connection"
    )
    lead.add_argument("--startup-timeout", type=float, default=120.0, help="wait for workers, s")
    serve = parser.add_argument_group("a master serving runs to pytest (--master --web-port)")
    serve.add_argument(
        "--web-port",
        type=int,
        default=None,
        help="serve runs from ws_storm.distributed (pytest --ws-locust-master=WEB_HOST:PORT) "
        "on Locust's web UI at this port, until interrupted; no --scenario, --url",
    )
    serve.add_argument("--web-host", default="127.0.0.1", help="the web UI's address")
    work = parser.add_argument_group("a worker (--worker)")
    work.add_argument("--master-host", default="127.0.0.1", help="the master's address")
    work.add_argument("--master-port", type=int, default=DEFAULT_PORT, help="the master's port")
    parser.add_argument(
        "--project-dir", default=None, help="where pyproject.toml is (default: current directory)"
    )
    return parser


def _scenario(path: str) -> object:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise WsConfigError(f"--scenario must be MODULE:ATTR, got {path!r}")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise WsConfigError(f"--scenario {path}: cannot import {module_name}: {err}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise WsConfigError(f"--scenario {path}: {module_name} has no {attr!r}") from None


def _lead(args: argparse.Namespace) -> int:
    from pytest_ws_resilience.load.scenario import Scenario, check_picklable

    if not args.scenario or not args.url:
        raise WsConfigError("--master / --workers need --scenario MODULE:ATTR and --url URL")
    scenario = _scenario(args.scenario)
    if not isinstance(scenario, Scenario):
        raise WsConfigError(
            f"--scenario {args.scenario} is a {type(scenario).__name__}, not a Scenario"
        )
    check_picklable(scenario)
    project = os.path.abspath(args.project_dir or os.getcwd())
    env = args.env or os.environ.get("WS_ENV") or "local"
    spec = RunSpec(
        scenario,
        args.url,
        args.users,
        env=env,
        project_dir=project,
        isolation=not args.no_isolation,
        reconnects=args.reconnects,
    )
    remote = args.workers is None
    run = DistributedRun(
        spec,
        spawn_rate=args.spawn_rate,
        workers=args.expect_workers if remote else args.workers,
        run_time=args.run_time,
        master=(args.bind_host, args.port) if remote else None,
        secret=os.environ.get(SECRET_ENV),
        startup_timeout=args.startup_timeout,
    )
    result = run_distributed(run)
    print(result.describe())
    return 1 if result.error_count or result.nothing_checked else 0


def _serve(args: argparse.Namespace) -> int:
    """A master with its web UI, serving runs until interrupted (Ctrl-C)."""
    command = locust_command(
        "--master",
        "--master-bind-host",
        args.bind_host,
        "--master-bind-port",
        str(args.port),
        "--web-host",
        args.web_host,
        "--web-port",
        str(args.web_port),
        "--expect-workers",
        str(args.expect_workers),
    )
    return _become(command, dict(os.environ))


def _work(args: argparse.Namespace) -> int:
    command = locust_command(
        "--worker", "--master-host", args.master_host, "--master-port", str(args.master_port)
    )
    env = dict(os.environ)
    if args.project_dir:
        env[PROJECT_DIR_ENV] = os.path.abspath(args.project_dir)
    elif PROJECT_DIR_ENV not in env:
        env[PROJECT_DIR_ENV] = os.getcwd()
    return _become(command, env)


def _become(command: list[str], env: dict[str, str]) -> int:
    """Replace this process with ``command`` (Locust): a signal sent to this process
    reaches Locust itself, and no child is left behind when it is terminated."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)
    return 0  # pragma: no cover - execve does not return


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.worker:
            return _work(args)
        if args.master and args.web_port is not None:
            return _serve(args)
        return _lead(args)
    except (WsConfigError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except WsResilienceError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
