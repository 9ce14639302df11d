"""Sampling what a server the plugin started holds: resident memory, open file
descriptors, threads and TCP sockets, of its process and every child (a command may
fork workers: ``uvicorn --workers``, daphne), or of a container.

A process is read with psutil (from ``/proc`` on Linux). A container is read two ways:
the Docker stats API (its cgroup's memory usage and task count; the call is bounded by
the Docker client's timeout) and, since the daemon runs containers on this host, its
main process from the host (``container.attrs["State"]["Pid"]``), which gives fds and
sockets too. A host pid is used only when ``/proc/PID/cgroup`` names the container: a
daemon in another pid namespace (a VM, a remote host) hands out pids this host cannot
read, and reading an unrelated process would be worse than reading nothing.

Blocking; async callers (the storm) go through `asyncio.to_thread`. A figure that
cannot be read is None and the sample's ``note`` says why; a server that cannot be
read at all raises `ServerResourcesUnavailableError` with one line saying why. The
pure part (the record, the growth, its scaling) is `servers.growth`.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_ws_resilience.errors import ServerResourcesUnavailableError
from pytest_ws_resilience.servers.growth import ResourceSample, still_falling

__all__ = [
    "SETTLE_INTERVAL_S",
    "in_process_unavailable",
    "not_started_here",
    "sample_container",
    "sample_process_tree",
    "settled_sample",
]

#: Spacing of the samples `settled_sample` compares.
SETTLE_INTERVAL_S = 0.05
#: Samples in a row that must show nothing falling before the server counts as settled.
_STEADY_SAMPLES = 2


def not_started_here(url: str) -> ServerResourcesUnavailableError:
    """The error for a server the plugin did not start (``--ws-url``, a profile's url)."""
    return ServerResourcesUnavailableError(
        f"the server at {url} was not started by the plugin; resources unknown (start it "
        'with --ws-server-cmd "... {port}", --ws-app with --ws-app-subprocess, or as a '
        "service, to measure it)"
    )


def in_process_unavailable(what: str, instead: str) -> ServerResourcesUnavailableError:
    """The error for a server that runs inside the test process (the embedded reference
    server, an app in a thread): its memory, fds and threads are the test's too, the
    clients' included, so a sample would measure the test, not the server."""
    return ServerResourcesUnavailableError(
        f"{what} runs inside the test process, so its resources cannot be told apart from "
        f"the test's; to measure it, run it as a process of its own: {instead}"
    )


def _psutil() -> Any:
    """psutil, imported on first use (a run that samples nothing never loads it)."""
    return importlib.import_module("psutil")


def _figure(process: Any, name: str) -> int:
    """One figure of one process: resident bytes, open fds or threads."""
    if name == "rss":
        return int(process.memory_info().rss)
    if name == "fds":
        return int(process.num_fds())
    return int(process.num_threads())


def _tcp_sockets(process: Any) -> set[Any]:
    """Keys of the process's TCP sockets: their inodes, on Linux.

    psutil's ``net_connections`` reads the host's whole TCP table, which the kernel
    writes out line by line: about 50-100 ms on a machine with thousands of sockets in
    TIME_WAIT (a storm leaves those behind). Linux names a socket's protocol in the
    ``system.sockprotoname`` attribute of its ``/proc/PID/fd`` link (``TCP``,
    ``TCPv6``, ``UNIX-STREAM``...), some 15 µs a socket; the table is read only for
    sockets without it. Elsewhere, psutil's (keyed by addresses).
    """
    fd_dir = Path(f"/proc/{process.pid}/fd")
    if not fd_dir.is_dir():
        method = getattr(process, "net_connections", None) or process.connections
        return {(c.family, c.laddr, c.raddr, c.status) for c in method(kind="tcp")}
    try:
        entries = list(fd_dir.iterdir())
    except PermissionError:
        raise _psutil().AccessDenied(process.pid) from None
    except OSError:  # the process is gone
        return set()
    tcp: set[Any] = set()
    unnamed: set[str] = set()
    for entry in entries:
        try:
            link = os.readlink(entry)
            if not link.startswith("socket:["):
                continue
            protocol = os.getxattr(entry, "system.sockprotoname")
        except FileNotFoundError:  # closed since it was listed
            continue
        except OSError:  # a kernel without the attribute
            unnamed.add(link[8:-1])
            continue
        if protocol.startswith(b"TCP"):
            tcp.add(link[8:-1])
    return tcp | (unnamed & _tcp_table_inodes(process.pid)) if unnamed else tcp


def _tcp_table_inodes(pid: int) -> set[str]:
    """The inodes in the TCP tables of ``pid``'s network namespace."""
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", "rb") as rows:
                next(rows, None)  # the header
                found.update(row.split(None, 10)[9].decode() for row in rows)
        except (OSError, IndexError):
            continue
    return found


def _read_tree(pid: int, what: str) -> tuple[ResourceSample, list[str]]:
    """Sum the figures of ``pid`` and its descendants; the problems met, as notes."""
    psutil = _psutil()
    try:
        root = psutil.Process(pid)
        if root.status() == psutil.STATUS_ZOMBIE:
            raise psutil.NoSuchProcess(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        raise ServerResourcesUnavailableError(
            f"{what}: process {pid} is gone (the server exited?)"
        ) from None
    except psutil.AccessDenied:
        raise ServerResourcesUnavailableError(
            f"{what}: process {pid} cannot be read by this user"
        ) from None
    totals: dict[str, int | None] = {"rss": 0, "fds": 0, "threads": 0}
    sockets: set[Any] | None = set()
    denied: set[str] = set()
    counted = 0
    for process in processes:
        try:
            with process.oneshot():
                for name in totals:
                    try:
                        value = _figure(process, name)
                    except psutil.AccessDenied:
                        denied.add(name)
                        totals[name] = None
                        continue
                    current = totals[name]
                    totals[name] = None if current is None else current + value
                if sockets is not None:
                    try:
                        sockets |= _tcp_sockets(process)
                    except psutil.AccessDenied:
                        denied.add("sockets")
                        sockets = None
        except psutil.NoSuchProcess:
            continue  # a child that ended while it was read: it holds nothing now
        counted += 1
    if not counted:
        raise ServerResourcesUnavailableError(f"{what}: process {pid} is gone (the server exited?)")
    notes = [f"{', '.join(sorted(denied))} not readable by this user"] if denied else []
    sample = ResourceSample(
        rss_bytes=totals["rss"],
        fds=totals["fds"],
        threads=totals["threads"],
        sockets=None if sockets is None else len(sockets),
        processes=counted,
        source=f"process tree of pid {pid}",
        taken_at=time.monotonic(),
    )
    return sample, notes


def sample_process_tree(pid: int, *, what: str = "server") -> ResourceSample:
    """What process ``pid`` and all its descendants hold now.

    Raises:
        ServerResourcesUnavailableError: the process is gone, or cannot be read.
    """
    sample, notes = _read_tree(pid, what)
    return sample.with_note("; ".join(notes)) if notes else sample


def _container_stats(container: Any) -> tuple[int | None, int | None]:
    """(memory usage less inactive page cache, task count) by the Docker stats API."""
    try:
        stats = container.stats(stream=False, one_shot=True)
    except TypeError:  # an SDK without one_shot: one sample, a second or two slower
        stats = container.stats(stream=False)
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    detail = memory.get("stats") or {}
    inactive = detail.get("inactive_file", detail.get("total_inactive_file", 0))
    working = None if usage is None else max(0, int(usage) - int(inactive or 0))
    pids = (stats.get("pids_stats") or {}).get("current")
    return working, None if pids is None else int(pids)


def _host_pid_of(container_id: str, pid: int) -> bool:
    """True when ``pid`` on this host is the container's (its cgroup names it)."""
    try:
        cgroups = Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return container_id in cgroups


def sample_container(container: Any, *, what: str = "container") -> ResourceSample:
    """What a running container holds now: the Docker stats API's memory and task
    count, and, when its main process is visible from this host, the figures of its
    process tree read as `sample_process_tree` reads a process.

    Bounded by the Docker client's timeout (`engine.docker_client`).

    Raises:
        ServerResourcesUnavailableError: the container is gone or not running, or the
            daemon did not answer.
    """
    try:
        container.reload()
        state = container.attrs.get("State") or {}
        if not state.get("Running") or state.get("Paused"):
            status = "paused" if state.get("Paused") else state.get("Status", "not running")
            raise ServerResourcesUnavailableError(f"{what}: the container is {status}")
        memory, pids = _container_stats(container)
    except ServerResourcesUnavailableError:
        raise
    except Exception as err:  # the SDK's errors, a timeout: one line, not a traceback
        raise ServerResourcesUnavailableError(
            f"{what}: the Docker daemon gave no stats: {' '.join(str(err).split())}"
        ) from None
    short_id = str(container.id)[:12]
    pid = int(state.get("Pid") or 0)
    if pid and _host_pid_of(str(container.id), pid):
        try:
            sample, notes = _read_tree(pid, what)
        except ServerResourcesUnavailableError as err:
            sample, notes = None, [str(err)]
        if sample is not None:
            note = "; ".join(notes)
            return ResourceSample(
                rss_bytes=sample.rss_bytes,
                fds=sample.fds,
                threads=sample.threads,
                sockets=sample.sockets,
                processes=sample.processes,
                source=f"container {short_id} (host pid {pid})",
                note=note,
                container_memory_bytes=memory,
                container_pids=pids,
                taken_at=sample.taken_at,
            )
        reason = "; ".join(notes)
    else:
        reason = f"its process (pid {pid}) is not visible from this host"
    return ResourceSample(
        rss_bytes=memory,
        fds=None,
        threads=pids,
        sockets=None,
        processes=1 if pids else 0,
        source=f"container {short_id} (Docker stats API)",
        note=f"{reason}: RSS is the container's memory usage, threads its task count, "
        "fds and sockets unknown",
        container_memory_bytes=memory,
        container_pids=pids,
        taken_at=time.monotonic(),
    )


def settled_sample(
    take: Callable[[], ResourceSample],
    *,
    timeout: float,
    interval: float = SETTLE_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> ResourceSample:
    """A sample taken once the server stopped letting go of connections: samples
    ``interval`` apart until the fd and socket counts stopped falling for two in a row,
    or ``timeout`` seconds passed (then the last sample, with a note saying so).

    Closed sockets are let go a little after the client's close returned (the server's
    loop closes the transport on its next turn; a handler's cleanup, or a collector,
    runs later still): a sample taken at once would count them as growth.

    Raises:
        ServerResourcesUnavailableError: ``take`` raised it (the server is gone...).
    """
    deadline = time.monotonic() + timeout
    previous = take()
    steady = 0
    while steady < _STEADY_SAMPLES:
        if time.monotonic() + interval > deadline:
            return previous.with_note(f"fds still falling after {timeout:g} s")
        sleep(interval)
        current = take()
        steady = 0 if still_falling(previous, current) else steady + 1
        previous = current
    return previous
