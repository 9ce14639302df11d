"""The run's state directory, and what a dead run left in it.

One directory per run, ``<tempdir>/ws-resilience-run-<run id>``, created on first use
by any process of the run, removed by the run's owner (the only process, or the xdist
controller) at the end. It holds:

- ``owner.json``: the owner's pid and start time, and the host, so the next run can tell
  a dead run's directory (owner gone) from a live one's, even after pid reuse;
- ``processes/<pid>.json``: every local process the run started (``--ws-server-cmd``,
  process services, ``--ws-app-subprocess``), with its process group, its start time
  and the pid of the process that spawned it, removed when it is stopped;
- ``logs/``: the output of those processes; the shared-service records and locks.

A SIGKILLed pytest runs no teardown. Its children die with it by their parent-death
signal (`process_backend.spawn`); what that cannot cover (a grandchild a shell left
behind, a platform without ``prctl``) is reaped by `reap_stale_runs` at the next
start: every recorded process group still alive, whose start time still matches, gets
SIGTERM, then SIGKILL after the grace; then the directory goes. A process whose
identity cannot be read (no ``/proc``) is never signalled: a reused pid is someone
else's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = [
    "LEGACY_STALE_AFTER_S",
    "LOGS_DIR",
    "OWNER_FILE",
    "PROCESSES_DIR",
    "RUN_DIR_PREFIX",
    "ensure_state_dir",
    "forget_process",
    "process_identity",
    "reap_processes",
    "reap_stale_runs",
    "record_process",
    "running_as",
    "state_dir_for",
]

RUN_DIR_PREFIX = "ws-resilience-run-"
OWNER_FILE = "owner.json"
PROCESSES_DIR = "processes"
LOGS_DIR = "logs"
#: A run directory without ``owner.json`` (written by versions before it existed, or
#: one being created) is taken for stale only once it is this old.
LEGACY_STALE_AFTER_S = 3600.0
#: The marker of a directory being created (renamed into place once complete).
_NEW_MARK = ".new-"
# After SIGKILL a process is gone within milliseconds; this bounds a stuck wait.
_KILL_WAIT_S = 5.0


def state_dir_for(run_id: str, base: Path | None = None) -> Path:
    """Where run ``run_id`` keeps its state (``base``: the temp directory)."""
    return Path(tempfile.gettempdir() if base is None else base) / f"{RUN_DIR_PREFIX}{run_id}"


def process_identity(pid: int) -> str | None:
    """The start time of a live process (clock ticks since boot, from ``/proc``): with
    the pid, it names one process even after the pid is reused. None when the process
    is gone, a zombie, or ``/proc`` is absent."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name: state, ppid, pgrp, ... (None: gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    return stat.rpartition(")")[2].split()


def _group_alive(pgid: int, identity: str | None) -> bool:
    """True while the process group ``pgid`` of the recorded leader still has a live
    member: the leader itself, or, once it died, what it left in its group (a shell's
    background server). A pid now held by another process means the group is gone (the
    kernel reuses no pid still naming a group, so members outlive their leader's pid)."""
    if running_as(pgid, identity):
        return True
    leader = _stat_fields(pgid)
    if identity is None or (leader is not None and leader[0] not in "ZX"):
        return False  # unknown, or the pid is another live process's now
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in "ZX":
                return True
    return False


def running_as(pid: int, identity: str | None) -> bool:
    """True while the process ``pid`` that had ``identity`` still runs (not a zombie,
    not a reused pid). An unknown identity is never taken for a match."""
    return identity is not None and pid > 0 and process_identity(pid) == identity


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    temporary.replace(path)  # atomic: a reader sees nothing or all of it


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ensure_state_dir(path: Path, *, owner_pid: int) -> Path:
    """Create the run's state directory with its ``owner.json`` (idempotent; safe from
    every process of the run at once): it appears complete or not at all."""
    if (path / OWNER_FILE).exists():
        return path
    owner = {
        "owner_pid": owner_pid,
        "owner_identity": process_identity(owner_pid),
        "host": socket.gethostname(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f"{path.name}{_NEW_MARK}{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    _write_json(staging / OWNER_FILE, owner)
    try:
        staging.rename(path)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process of the run won
        if not path.is_dir():
            raise
        if not (path / OWNER_FILE).exists():
            _write_json(path / OWNER_FILE, owner)  # made by hand, or by an older version
    return path


def record_process(state_dir: Path, pid: int, *, what: str, owner_pid: int) -> Path:
    """Record a process the run started (its own process group: ``pgid == pid``), so
    a next run can reap it if this one dies without stopping it."""
    ensure_state_dir(state_dir, owner_pid=owner_pid)
    directory = state_dir / PROCESSES_DIR
    directory.mkdir(exist_ok=True)
    path = directory / f"{pid}.json"
    _write_json(
        path,
        {
            "pid": pid,
            "identity": process_identity(pid),
            "spawner_pid": os.getpid(),
            "spawner_identity": process_identity(os.getpid()),
            "what": what,
        },
    )
    return path


def forget_process(state_dir: Path, pid: int) -> None:
    """The process was stopped: nothing to reap."""
    with contextlib.suppress(OSError):
        (state_dir / PROCESSES_DIR / f"{pid}.json").unlink()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _wait_gone(pid: int, identity: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(pid, identity):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child: collect it
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def reap_processes(state_dir: Path, *, timeout: float, orphans_only: bool = False) -> list[str]:
    """Stop the recorded processes still running (their whole process group): SIGTERM,
    SIGKILL after ``timeout``; forget them.

    Args:
        orphans_only: only those whose spawner is gone (the run's owner at its end:
            a worker that died left its server behind); the others are their spawner's.

    Returns:
        One phrase per process stopped ("pid 123 (service 'api')").
    """
    stopped: list[str] = []
    directory = state_dir / PROCESSES_DIR
    if not directory.is_dir():
        return stopped
    for path in sorted(directory.glob("*.json")):
        record = _read_json(path)
        if record is None:
            continue
        pid, identity = int(record.get("pid", 0)), record.get("identity")
        if orphans_only and running_as(
            int(record.get("spawner_pid", 0)), record.get("spawner_identity")
        ):
            continue
        if _group_alive(pid, identity):
            assert identity is not None
            _signal_group(pid, signal.SIGCONT)  # a paused one cannot act on SIGTERM
            _signal_group(pid, signal.SIGTERM)
            if not _wait_gone(pid, identity, timeout):
                _signal_group(pid, signal.SIGKILL)
                _wait_gone(pid, identity, _KILL_WAIT_S)
            stopped.append(f"pid {pid} ({record.get('what', 'a process')})")
        path.unlink(missing_ok=True)
    return stopped


def _owner_gone(directory: Path, *, host: str) -> bool:
    owner = _read_json(directory / OWNER_FILE)
    if owner is None:
        try:
            age = time.time() - directory.stat().st_mtime
        except OSError:
            return False
        return age > LEGACY_STALE_AFTER_S
    if owner.get("host") != host:
        return False  # a shared temp dir: its pids mean nothing here
    pid = int(owner.get("owner_pid", 0))
    identity = owner.get("owner_identity")
    if identity is None:
        # Unreadable when written (no /proc): the pid alone, conservatively.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
            return False
        return True
    return not running_as(pid, identity)


def reap_stale_runs(
    *, current: Path | None, timeout: float, base: Path | None = None, host: str | None = None
) -> list[str]:
    """At a run's start: stop what every dead run of this host left running and remove
    its state directory (``current``, this run's, is left alone).

    Returns:
        One phrase per directory removed, naming what was stopped in it.
    """
    base = Path(tempfile.gettempdir() if base is None else base)
    here = socket.gethostname() if host is None else host
    reaped: list[str] = []
    for directory in sorted(base.glob(f"{RUN_DIR_PREFIX}*")):
        if current is not None and directory == current:
            continue
        if not directory.is_dir() or directory.is_symlink():
            continue
        if _NEW_MARK in directory.name:
            # A directory a crashed process was creating; a live one renames it at once.
            try:
                stale = time.time() - directory.stat().st_mtime > LEGACY_STALE_AFTER_S
            except OSError:
                continue
            if stale:
                shutil.rmtree(directory, ignore_errors=True)
            continue
        if not _owner_gone(directory, host=here):
            continue
        stopped = reap_processes(directory, timeout=timeout)
        shutil.rmtree(directory, ignore_errors=True)
        run_id = directory.name.removeprefix(RUN_DIR_PREFIX)
        reaped.append(f"run {run_id}" + (f" ({', '.join(stopped)})" if stopped else ""))
    return reaped
