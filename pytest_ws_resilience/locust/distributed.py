"""A distributed run from pytest: a headless Locust master and its workers, as
subprocesses, against the server under test; their statistics read back.

Never imports Locust (importing it monkey-patches the whole process with gevent):
Locust runs in the processes started here, with our locustfile
(`pytest_ws_resilience.locust.locustfile`). Blocking; ``ws_storm.distributed`` runs it
in a thread.

What travels where:

- the run's spec (`RunSpec`: scenario, URL, env, users, isolation; no key) to the
  master in `SPEC_ENV`; Locust hands it to each worker in its spawn message;
- the run's HS256 secret (when no key is configured) to the local workers in
  `SECRET_ENV`; a profile's own key variables are inherited with the environment;
  never a command-line argument (``ps`` shows those to every user of the machine);
- back: the master's statistics document (`RESULTS_ENV`, a file in a private
  temporary directory), read into a `DistributedResult`.

Every wait is bounded: the workers' start (``startup_timeout``, Locust's
``--expect-workers-max-wait``), the run (``run_time``, Locust's ``--run-time``, plus a
margin for stopping and flushing), and the end of every process (terminate, then kill,
then reap). No process outlives the call.

``DistributedRun.master=(host, port)``: the master listens there, for workers started
on other machines (``ws-resilience-load --worker --master-host HOST``); no local worker
is started and the run waits for ``workers`` of them (``ws-resilience-load --master
--scenario ...``). A master already running, with a web UI, is played on by
`pytest_ws_resilience.locust.attach` instead (``--ws-locust-master``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_ws_resilience.config.bounds import check_count, check_seconds
from pytest_ws_resilience.errors import LocustExtraMissingError, LocustRunError
from pytest_ws_resilience.locust.spec import RESULTS_ENV, SECRET_ENV, SPEC_ENV, RunSpec
from pytest_ws_resilience.locust.stats import DistributedResult, distributed_result
from pytest_ws_resilience.servers.log_digest import digest

__all__ = [
    "MAX_WORKERS",
    "DistributedRun",
    "locust_command",
    "locustfile_path",
    "parse_master",
    "run_distributed",
]

#: The most local worker processes one run starts.
MAX_WORKERS = 64
# After run_time: the master stops its users, flushes the workers' statistics, quits.
_STOP_MARGIN_S = 30.0
# How long a process may take to exit once asked (terminate), then once killed.
_EXIT_S = 5.0


def locustfile_path() -> str:
    """The path of our locustfile (found without importing it: it imports Locust)."""
    spec = importlib.util.find_spec("pytest_ws_resilience.locust.locustfile")
    assert spec is not None and spec.origin is not None
    return spec.origin


def parse_master(value: str) -> tuple[str, int]:
    """``HOST:PORT`` of ``--ws-locust-master``.

    Raises:
        ValueError: not ``HOST:PORT`` with a port from 1 to 65535 (one line).
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--ws-locust-master must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _require_locust() -> None:
    if importlib.util.find_spec("locust") is None:
        raise LocustExtraMissingError(
            "distributed runs need Locust: pip install 'pytest-ws-resilience[locust]'"
        )


@dataclass(frozen=True)
class DistributedRun:
    """How one distributed run is started and bounded.

    Attributes:
        spec: what the workers play.
        spawn_rate: users started per second, over all workers.
        workers: local worker processes (or, with ``master``, remote workers awaited).
        run_time: seconds after which the run is stopped if its users are not done.
        master: ``(host, port)`` the master listens on for remote workers; None: a
            loopback port, and local workers.
        secret: the run's HS256 secret, for the workers' environment (`SECRET_ENV`).
        startup_timeout: seconds the master waits for its workers.
    """

    spec: RunSpec
    spawn_rate: float
    workers: int
    run_time: float
    master: tuple[str, int] | None = None
    secret: str | None = None
    startup_timeout: float = 60.0

    def __post_init__(self) -> None:
        check_count("users", self.spec.users, minimum=1, maximum=100_000)
        check_count("workers", self.workers, minimum=1, maximum=MAX_WORKERS)
        check_seconds("run_time", self.run_time, minimum=1.0)
        check_seconds("startup_timeout", self.startup_timeout, minimum=1.0)
        rate = self.spawn_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 100_000:
            raise ValueError(f"spawn_rate must be a number of users per second > 0, got {rate!r}")

    @property
    def bound_s(self) -> float:
        """The most the whole run may take: start-up, run time, stopping."""
        return self.startup_timeout + self.run_time + _STOP_MARGIN_S


class _Processes:
    """The processes of one run, each with its log file; all ended by `end_all`."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.started: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(
        self, name: str, command: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        log = self._directory / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                list(command),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append((name, process, log))
        return process

    def log_of(self, name: str) -> str:
        for each, _, log in self.started:
            if each == name:
                return digest(log.read_text(encoding="utf-8", errors="replace"), 30)
        return "(no log)"

    def end_all(self) -> None:
        """Terminate every process still running, kill what does not exit, reap all."""
        for _, process, _ in self.started:
            if process.poll() is None:
                process.terminate()
        for _, process, _ in self.started:
            try:
                process.wait(timeout=_EXIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=_EXIT_S)

    @property
    def pids(self) -> list[int]:
        return [process.pid for _, process, _ in self.started]


@contextlib.contextmanager
def _run_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ws-resilience-locust-") as name:
        yield Path(name)


def locust_command(*arguments: str) -> list[str]:
    """Locust's command line with our locustfile, then ``arguments``."""
    return [sys.executable, "-m", "locust", "-f", locustfile_path(), *arguments]


def run_distributed(run: DistributedRun) -> DistributedResult:
    """Start the master (and the local workers), wait for the run, read its statistics.

    Raises:
        LocustExtraMissingError: Locust is not installed.
        LocustRunError: the master or a worker did not start or ended without writing
            the statistics, within the run's bound (the message has its log).
    """
    _require_locust()
    spec = run.spec
    with _run_directory() as directory:
        results = directory / "results.json"
        base = {k: v for k, v in os.environ.items() if k not in (SPEC_ENV, RESULTS_ENV)}
        master_env = {**base, SPEC_ENV: spec.encode(), RESULTS_ENV: str(results)}
        worker_env = dict(base)
        if run.secret is not None:
            worker_env[SECRET_ENV] = run.secret
        host, port = run.master if run.master is not None else ("127.0.0.1", _free_port())
        processes = _Processes(directory)
        try:
            master = processes.start(
                "master",
                locust_command(
                    "--master",
                    "--headless",
                    "--master-bind-host",
                    host,
                    "--master-bind-port",
                    str(port),
                    "--expect-workers",
                    str(run.workers),
                    "--expect-workers-max-wait",
                    f"{run.startup_timeout:g}",
                    "--users",
                    str(spec.users),
                    "--spawn-rate",
                    f"{run.spawn_rate:g}",
                    "--run-time",
                    f"{max(1, round(run.run_time))}s",
                    "--stop-timeout",
                    "1",
                    "--host",
                    spec.url,
                    "--loglevel",
                    "WARNING",
                    "--only-summary",
                ),
                master_env,
            )
            if run.master is None:
                for number in range(run.workers):
                    processes.start(
                        f"worker-{number}",
                        locust_command(
                            "--worker",
                            "--master-host",
                            "127.0.0.1",
                            "--master-port",
                            str(port),
                            "--loglevel",
                            "WARNING",
                        ),
                        worker_env,
                    )
            try:
                master.wait(timeout=run.bound_s)
            except subprocess.TimeoutExpired:
                raise LocustRunError(
                    f"the Locust master did not end within {run.bound_s:g}s (start-up "
                    f"{run.startup_timeout:g}s + run_time {run.run_time:g}s + "
                    f"{_STOP_MARGIN_S:g}s); its log:\n{processes.log_of('master')}"
                ) from None
        finally:
            processes.end_all()
        if not results.exists():
            worker_logs = "\n".join(
                f"{name}:\n{processes.log_of(name)}"
                for name, _, _ in processes.started
                if name != "master"
            )
            raise LocustRunError(
                f"the Locust master exited (status {master.returncode}) without writing "
                f"its statistics; its log:\n{processes.log_of('master')}\n{worker_logs}"
            )
        document = json.loads(results.read_text(encoding="utf-8"))
    label = spec.label or f"distributed {spec.scenario.name} users={spec.users}"
    return distributed_result(document, label=label, users=spec.users)
