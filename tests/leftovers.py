"""The suite's own end check: after the last test, nothing the tests made is still there.

SPEC section 6 promises that after the suite no socket, task, proxy, process or labelled
container is left. ``ResourceWarning`` (an error in ``pyproject.toml``) catches what is
freed without being closed; this catches what is never freed: a connection still open, a
server still listening, a child process still running, a thread still alive, a container
still there. Each process checks itself after every ``pytest_sessionfinish``
implementation ran (the plugin's own clean-up included); an xdist worker hands its
findings to the controller in ``workeroutput``. A task the event loop destroyed while it
was still pending (asyncio logs it, and nothing else would fail) is counted as it
happens. Anything found fails the run (exit 1) and is named in the terminal summary; a
clean run says what was checked, in one line.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Generator
from typing import Any

import psutil
import pytest

#: How long things the last test closed may take to go (a server thread closing its end
#: of a connection, a child process exiting): a bound, spent only when something is found.
GRACE_S = 5.0

#: Threads that live as long as the process by design, by name prefix: the process
#: backend forks every server from one long-lived thread (servers/process_backend.py).
PROCESS_LIFETIME_THREADS = ("ws-resilience-spawner",)

#: Findings shown per process; the rest are counted.
SHOWN = 20

#: The key of these findings in an xdist worker's ``workeroutput``.
WORKEROUTPUT_KEY = "tests_leftovers"


class _PendingTasks(logging.Handler):
    """Keeps asyncio's "Task was destroyed but it is pending!" records: a task that
    nobody awaited or cancelled, freed with its loop."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Task was destroyed but it is pending"):
            # The loop's default handler puts the task's repr on the next line.
            task = message.partition("task:")[2].strip()
            during = os.environ.get("PYTEST_CURRENT_TEST", "between tests")
            self.seen.append(f"a task destroyed while pending, during {during}: {task[:200]}")


def _sockets(process: psutil.Process) -> list[str]:
    # psutil 6 renamed connections() to net_connections(); the floor is 5.9.
    read = getattr(process, "net_connections", None) or process.connections
    left = []
    for conn in read(kind="inet"):
        if conn.status == psutil.CONN_LISTEN:
            left.append(f"a socket listening on {conn.laddr.ip}:{conn.laddr.port}")
        elif conn.raddr:
            left.append(
                f"a connection {conn.laddr.ip}:{conn.laddr.port} -> "
                f"{conn.raddr.ip}:{conn.raddr.port} ({conn.status})"
            )
    return left


def _children(process: psutil.Process) -> list[str]:
    left = []
    for child in process.children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue  # exited; an unreaped Popen shows up as a ResourceWarning
            command = " ".join(child.cmdline())[:160]
        except psutil.NoSuchProcess:
            continue
        left.append(f"a child process {child.pid} still running: {command}")
    return left


def _threads(before: set[int]) -> list[str]:
    return [
        f"a thread still alive: {thread.name}"
        for thread in threading.enumerate()
        if thread.ident not in before
        and thread is not threading.main_thread()
        and not thread.name.startswith(PROCESS_LIFETIME_THREADS)
    ]


def _containers(since: float) -> tuple[list[str], str | None]:
    """Labelled containers made since ``since``, and why none could be listed."""
    from pytest_ws_resilience.servers.engine import docker_client, docker_unavailable_reason
    from pytest_ws_resilience.servers.labels import LABEL_CREATED, LABEL_RUN

    if (reason := docker_unavailable_reason()) is not None:
        return [], reason
    client = docker_client()
    try:
        left = []
        for container in client.containers.list(all=True, filters={"label": LABEL_RUN}):
            created = container.labels.get(LABEL_CREATED, "")
            # Whole seconds; a label that does not read as one is counted, not passed over.
            if not created.isdigit() or int(created) >= int(since):
                left.append(f"a container {container.short_id} ({container.status})")
        return left, None
    finally:
        client.close()


class Leftovers:
    """The end check of one pytest process (a worker, the controller, or a lone run)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = time.time()
        self.threads_before = {t.ident for t in threading.enumerate() if t.ident is not None}
        self.is_worker = hasattr(config, "workerinput")
        #: What each process found, by process ("gw0", or "this run").
        self.found: dict[str, list[str]] = {}
        self.not_checked: list[str] = []
        self.pending_tasks = _PendingTasks()
        logging.getLogger("asyncio").addHandler(self.pending_tasks)

    def _own(self) -> list[str]:
        process = psutil.Process()
        deadline = time.monotonic() + GRACE_S
        while True:
            left = _sockets(process) + _children(process) + _threads(self.threads_before)
            if not left or time.monotonic() >= deadline:
                return self.pending_tasks.seen + left
            time.sleep(0.05)

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        worker = getattr(node, "workerinput", {}).get("workerid", "a worker")
        if WORKEROUTPUT_KEY in output:
            if output[WORKEROUTPUT_KEY]:
                self.found[worker] = list(output[WORKEROUTPUT_KEY])
        elif error is None:
            self.not_checked.append(f"{worker} sent no end check")

    @pytest.hookimpl(wrapper=True, trylast=True)  # innermost: after every clean-up
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None]:
        result = yield
        if self.is_worker:
            self.config.workeroutput[WORKEROUTPUT_KEY] = self._own()  # type: ignore[attr-defined]
            return result
        # The controller too: it starts and removes what workers share (services, apps),
        # and its workers, its own children, must be gone by now.
        if own := self._own():
            self.found["this run"] = own
        containers, reason = _containers(self.started)
        if containers:
            self.found["docker"] = containers
        if reason is not None:
            self.not_checked.append(f"containers not checked: {reason}")
        if self.found and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return result

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.is_worker:
            return
        if not self.found:
            what = "sockets, child processes, threads, pending tasks, labelled containers"
            terminalreporter.write_line(f"tests/leftovers.py: nothing left behind ({what})")
        for where, lines in self.found.items():
            for line in lines[:SHOWN]:
                terminalreporter.write_line(
                    f"tests/leftovers.py: LEFT BEHIND ({where}): {line}", red=True, bold=True
                )
            if len(lines) > SHOWN:
                terminalreporter.write_line(
                    f"tests/leftovers.py: LEFT BEHIND ({where}): ... and {len(lines) - SHOWN} more",
                    red=True,
                    bold=True,
                )
        for line in self.not_checked:
            terminalreporter.write_line(f"tests/leftovers.py: {line}", yellow=True)

    def pytest_unconfigure(self) -> None:
        logging.getLogger("asyncio").removeHandler(self.pending_tasks)


def register(config: pytest.Config) -> None:
    """Install the end check in this process (from the root ``conftest.py``)."""
    config.pluginmanager.register(Leftovers(config), "tests-leftovers")
