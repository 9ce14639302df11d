"""Sampling real processes: a process tree's fds, threads, TCP sockets and memory
(children included), a server that settles after its connections closed, a process
that is gone, and the servers that cannot be sampled, each with its one-line reason."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.errors import ServerResourcesUnavailableError
from pytest_ws_resilience.servers.asgi_thread import AsgiAppServer
from pytest_ws_resilience.servers.resources import (
    _tcp_table_inodes,
    sample_process_tree,
    settled_sample,
)
from pytest_ws_resilience.servers.under_test import ServerUnderTest
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

#: A process driven line by line on stdin; it answers "ok" when a command is done.
HOLDER = textwrap.dedent(
    """
    import os, socket, subprocess, sys, threading, time
    held, threads, child = [], [], None
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "open":
            held += [open(os.devnull, "rb") for _ in range(int(arg))]
        elif command == "close-slowly":
            for f in held:
                time.sleep(0.02)
                f.close()
            held = []
        elif command == "listen":
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen()
            held.append(server)
        elif command == "thread":
            stop = threading.Event()
            threads.append(stop)
            threading.Thread(target=stop.wait, daemon=True).start()
        elif command == "child":
            child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                     stdin=subprocess.PIPE)
        elif command == "memory":
            held.append(b"x" * (int(arg) * 1024 * 1024))
        print("ok", flush=True)
    """
)


class Holder:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def do(self, command: str, *, wait: bool = True) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        if wait:
            assert self.process.stdout.readline().strip() == "ok"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(5)
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def holder() -> Iterator[Holder]:
    running = Holder()
    try:
        yield running
    finally:
        running.stop()


def test_a_sample_counts_the_fds_threads_sockets_and_memory_a_process_holds(
    holder: Holder,
) -> None:
    holder.do("open 0")  # started and reading
    before = sample_process_tree(holder.pid)
    holder.do("open 25")
    holder.do("listen")
    holder.do("thread")
    holder.do("memory 20")
    after = sample_process_tree(holder.pid)
    assert after.fds is not None and before.fds is not None
    assert after.fds - before.fds == 26  # 25 files and the listening socket
    assert (after.sockets, before.sockets) == (1, 0)
    assert after.threads == (before.threads or 0) + 1
    assert after.rss_mib is not None and before.rss_mib is not None
    assert after.rss_mib - before.rss_mib >= 19
    assert (after.processes, after.source, after.note) == (
        1,
        f"process tree of pid {holder.pid}",
        "",
    )


def test_the_children_of_a_server_count_too(holder: Holder) -> None:
    holder.do("open 0")
    alone = sample_process_tree(holder.pid)
    holder.do("child")
    both = sample_process_tree(holder.pid)
    assert (alone.processes, both.processes) == (1, 2)
    assert both.threads is not None and alone.threads is not None
    assert both.threads >= alone.threads + 1
    assert both.rss_bytes is not None and alone.rss_bytes is not None
    assert both.rss_bytes > alone.rss_bytes


def test_a_settled_sample_waits_until_the_fds_stop_falling(holder: Holder) -> None:
    holder.do("open 0")
    baseline = sample_process_tree(holder.pid)
    holder.do("open 15")
    holder.do("close-slowly", wait=False)  # one fd every 20 ms, about 0.3 s in all
    settled = settled_sample(lambda: sample_process_tree(holder.pid), timeout=10.0)
    assert settled.fds == baseline.fds
    assert settled.note == ""


def test_a_settled_sample_that_runs_out_of_time_says_so(holder: Holder) -> None:
    holder.do("open 40")
    holder.do("close-slowly", wait=False)
    settled = settled_sample(lambda: sample_process_tree(holder.pid), timeout=0.1)
    assert settled.note == "fds still falling after 0.1 s"


def test_a_process_that_is_gone_cannot_be_sampled(holder: Holder) -> None:
    holder.stop()
    with pytest.raises(ServerResourcesUnavailableError) as caught:
        sample_process_tree(holder.pid, what="service 'api'")
    assert str(caught.value) == (
        f"service 'api': process {holder.pid} is gone (the server exited?)"
    )


def test_the_embedded_server_and_a_remote_url_say_why_they_cannot_be_sampled() -> None:
    embedded = EmbeddedServer(ServerConfig(require_auth=False))  # never started: no need
    server = ServerUnderTest(url="ws://127.0.0.1:9/", source="embedded", embedded=embedded)
    with pytest.raises(ServerResourcesUnavailableError) as caught:
        server.resources()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the embedded reference server runs inside the test process")
    assert '--ws-server-cmd "ws-resilience-server --port {port}"' in message
    remote = ServerUnderTest(url="ws://127.0.0.1:9/chat", source="--ws-url")
    with pytest.raises(ServerResourcesUnavailableError) as caught:
        remote.resources()
    assert str(caught.value).startswith(
        "the server at ws://127.0.0.1:9/chat was not started by the plugin; resources unknown"
    )


def test_an_app_shared_by_the_xdist_controller_is_not_measured_in_a_worker() -> None:
    shared = ServerUnderTest(
        url="ws://127.0.0.1:9/", source="app chat:app shared by the xdist controller"
    )
    with pytest.raises(ServerResourcesUnavailableError) as caught:
        shared.resources()
    assert str(caught.value).startswith(
        "the server at ws://127.0.0.1:9/ (app chat:app shared by the xdist controller) runs "
        "in the controller, not in this worker; resources unknown"
    )


def test_the_tcp_table_fallback_finds_a_listening_socket() -> None:
    """Where a kernel names no socket protocol, the namespace's TCP table says which
    sockets are TCP (the table's inode column)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        inode = str(os.fstat(server.fileno()).st_ino)
        assert inode in _tcp_table_inodes(os.getpid())


def test_an_app_in_a_thread_points_to_the_subprocess_mode() -> None:
    app = AsgiAppServer(AppPath("chat", "app"))  # never started: no need
    server = ServerUnderTest(url="ws://127.0.0.1:9/", source="--ws-app", app=app)
    with pytest.raises(ServerResourcesUnavailableError) as caught:
        server.resources()
    assert str(caught.value) == (
        "the ASGI app chat:app (served in a thread) runs inside the test process, so its "
        "resources cannot be told apart from the test's; to measure it, run it as a process "
        "of its own: add --ws-app-subprocess"
    )
