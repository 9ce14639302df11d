"""A service as a local process (``command`` without ``image``; ``--ws-server-cmd``).

The process gets its own session (process group) so signals reach whatever the command
started, and its output goes to a file, not a pipe: a chatty server never blocks on a
full pipe, and the log is still there after it died.

Nothing outlives pytest: `spawn` gives every child the parent-death signal (Linux
``prctl(PR_SET_PDEATHSIG, SIGTERM)``), so a SIGKILLed pytest takes its servers with it.
The kernel sends that signal when the *thread* that forked exits, not the process: a
child forked from a short-lived thread (``asyncio.to_thread``'s pool, closed with its
loop) would be killed with that thread. So `spawn` forks on the main thread, or hands
the fork to one long-lived spawner thread that lives as long as the process. Inside a
pytest run (``$WS_RESILIENCE_RUN_STATE_DIR`` set) every child is also recorded in the
run's state directory (`run_state`) and logs there: what the signal cannot reach (a
grandchild, a platform without ``prctl``) is reaped by the next run.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pytest_ws_resilience.config.services import ResolvedService, ServiceSpec
from pytest_ws_resilience.errors import ServiceError
from pytest_ws_resilience.servers.labels import RUN_STATE_DIR_ENV, current_owner_pid
from pytest_ws_resilience.servers.run_state import (
    LOGS_DIR,
    ensure_state_dir,
    forget_process,
    record_process,
)

__all__ = [
    "ProcessBackend",
    "command_environment",
    "outliving_this_process",
    "process_alive",
    "read_log_digest_source",
    "read_log_tail",
    "run_state_dir",
    "spawn",
    "terminate_pid",
]

# After SIGKILL a process is gone within milliseconds; this only bounds a zombie wait.
_KILL_WAIT_S = 5.0


def command_environment(environ: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a local command: pytest's, the service's ``env`` on top, and
    the directory of the Python running pytest first on ``PATH`` (unless the service's
    ``env`` sets ``PATH`` itself).

    So ``python``, ``daphne`` or ``uvicorn`` in a command are the ones installed beside
    this pytest (a virtualenv's ``bin``), also when pytest was started by its path
    without activating the environment, as CI and Makefiles do.
    """
    env = {**environ, **extra}
    if "PATH" in extra:
        return env
    scripts = os.path.dirname(sys.executable)
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p]
    if scripts and (not parts or parts[0] != scripts):
        env["PATH"] = os.pathsep.join([scripts, *parts])
    return env


#: ``prctl``'s option number (linux/prctl.h).
_PR_SET_PDEATHSIG = 1
_prctl: Any = None
_prctl_lock = threading.Lock()
_spawner: ThreadPoolExecutor | None = None
#: Set inside `outliving_this_process`.
_OUTLIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("ws_outlive", default=False)


def _prctl_function() -> Any:
    """libc's ``prctl``, looked up once in this process (never in a forked child, where
    only async-signal-safe work belongs); None where there is none (not Linux)."""
    global _prctl
    if not sys.platform.startswith("linux"):
        return None
    with _prctl_lock:
        if _prctl is None:
            try:
                function = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):
                return None
            function.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]
            function.restype = ctypes.c_int
            _prctl = function
        return _prctl


def _die_with_parent(prctl: Any, parent: int) -> Callable[[], None]:
    """The ``preexec_fn`` of a child: SIGTERM when its parent (thread) dies; and if the
    parent died already, between the fork and this call, at once."""

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


def _spawner_pool() -> ThreadPoolExecutor:
    global _spawner
    with _prctl_lock:
        if _spawner is None:
            # One thread, kept until the interpreter exits: its children's parent.
            _spawner = ThreadPoolExecutor(1, thread_name_prefix="ws-resilience-spawner")
        return _spawner


@contextlib.contextmanager
def outliving_this_process() -> Iterator[None]:
    """Children spawned inside the block get no parent-death signal.

    For a service an xdist worker starts for the whole run (`sharing`): the worker
    that started it may finish, and exit, while other workers still use it; the
    controller removes it at the end, and a next run reaps it if the run is killed.
    """
    token = _OUTLIVE.set(True)
    try:
        yield
    finally:
        _OUTLIVE.reset(token)


def spawn(argv: Sequence[str], **popen_args: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen_args)`` for a child that dies with this process
    (see the module's docstring): parent-death signal SIGTERM on Linux, forked from the
    main thread or from the long-lived spawner thread (not inside
    `outliving_this_process`)."""
    prctl = None if _OUTLIVE.get() else _prctl_function()
    if prctl is None:
        return subprocess.Popen(list(argv), **popen_args)
    preexec = _die_with_parent(prctl, os.getpid())
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(list(argv), preexec_fn=preexec, **popen_args)
    return (
        _spawner_pool()
        .submit(lambda: subprocess.Popen(list(argv), preexec_fn=preexec, **popen_args))
        .result()
    )


def run_state_dir() -> Path | None:
    """The state directory of the pytest run this process belongs to, if any."""
    value = os.environ.get(RUN_STATE_DIR_ENV, "").strip()
    return Path(value) if value else None


def process_alive(pid: int) -> bool:
    """True while a process with ``pid`` exists (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def terminate_pid(pid: int, timeout: float) -> None:
    """SIGTERM the process group of ``pid``, SIGKILL it after ``timeout`` (bounded);
    for a process known only by its pid (the controller removing a shared one)."""
    _signal_group(pid, signal.SIGCONT)
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive_reaping(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if _alive_reaping(pid):
        _signal_group(pid, signal.SIGKILL)
        deadline = time.monotonic() + _KILL_WAIT_S
        while _alive_reaping(pid) and time.monotonic() < deadline:
            time.sleep(0.01)


def _alive_reaping(pid: int) -> bool:
    """`process_alive`, after collecting ``pid`` if it is our own dead child (a zombie
    still answers signal 0)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return process_alive(pid)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"process was killed by {name}"
    return f"process exited with status {code}"


class ProcessBackend:
    """One local process: start, liveness, logs, chaos (signals), stop."""

    kind = "process"

    def __init__(self, log_dir: Path | None = None) -> None:
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._resolved: ResolvedService | None = None
        self._state_dir: Path | None = None

    @property
    def container_id(self) -> str | None:
        return None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def launch(self, spec: ServiceSpec, resolved: ResolvedService) -> None:
        """Start the command with ``{port}`` filled, output appended to the log file."""
        state_dir = run_state_dir()
        if self.log_path is None:
            directory = self.log_dir
            if directory is None and state_dir is not None:
                ensure_state_dir(state_dir, owner_pid=current_owner_pid())
                directory = state_dir / LOGS_DIR
            elif directory is None:
                directory = Path(tempfile.gettempdir())
            directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f"ws-service-{spec.name}-", suffix=".log", dir=directory
            )
            os.close(fd)
            self.log_path = Path(name)
        self._resolved = resolved
        env = command_environment(os.environ, resolved.env)
        with self.log_path.open("ab") as log:
            try:
                self.process = spawn(
                    resolved.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=spec.cwd,
                    start_new_session=True,
                )
            except OSError as err:
                raise ServiceError(
                    f"service {spec.name!r}: cannot run {resolved.argv[0]!r}: "
                    f"{err.strerror or err}",
                    service=spec.name,
                ) from None
        if state_dir is not None:
            record_process(
                state_dir,
                self.process.pid,
                what=f"service {spec.name!r}",
                owner_pid=current_owner_pid(),
            )
        self._state_dir = state_dir

    def _forget(self) -> None:
        if self._state_dir is not None and self.process is not None:
            forget_process(self._state_dir, self.process.pid)

    def exit_reason(self) -> str | None:
        if self.process is None:
            return "process was not started"
        code = self.process.poll()
        return None if code is None else _describe_exit(code)

    def logs(self, tail: int = 50) -> str:
        if self.log_path is None:
            return ""
        return read_log_tail(self.log_path, tail)

    def stop(self, timeout: float) -> None:
        """SIGTERM (after SIGCONT, in case it is paused), SIGKILL after ``timeout``."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGCONT)
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(_KILL_WAIT_S)
        self._forget()

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def unpause(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(_KILL_WAIT_S)
        self._forget()

    def restart(self, spec: ServiceSpec, timeout: float) -> None:
        """Stop (bounded) and run the same command again on the same port."""
        assert self._resolved is not None
        self.stop(timeout)
        self.launch(spec, self._resolved)

    def _signal(self, signum: int) -> None:
        if self.process is None:
            raise ServiceError("the service process was not started")
        _signal_group(self.process.pid, signum)


def read_log_tail(path: Path, tail: int) -> str:
    """The last ``tail`` lines of a log file, reading at most its last 256 KiB."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - 256 * 1024))
            data = log.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-tail:]) if tail > 0 else ""


#: What `read_log_digest_source` reads of a log: its first and its last bytes.
_HEAD_BYTES = 64 * 1024
_TAIL_BYTES = 1024 * 1024


def read_log_digest_source(path: Path) -> str:
    """A log file's beginning and end, for `log_digest.digest` (which keeps the first
    and the last lines and folds repeats): the whole file when it is small, else its
    first 64 KiB and last 1 MiB with one line saying how much was skipped."""
    try:
        with path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(0)
            if size <= _HEAD_BYTES + _TAIL_BYTES:
                return log.read().decode("utf-8", "replace")
            head = log.read(_HEAD_BYTES).decode("utf-8", "replace").rpartition("\n")[0]
            log.seek(size - _TAIL_BYTES)
            tail = log.read().decode("utf-8", "replace").partition("\n")[2]
    except OSError:
        return ""
    skipped = size - _HEAD_BYTES - _TAIL_BYTES
    return f"{head}\n... {skipped:,} bytes of log skipped ...\n{tail}"
