"""The user's ASGI app served by ``python -m uvicorn`` in a subprocess, for apps that
need a process of their own (signal handlers, global state, their own event-loop
policy).

uvicorn binds port 0 and prints the port it got (`parse_listening_port`); the process's
output goes to a temporary file, read for that line and shown when the app does not
start. The server counts as up by the one readiness rule (`readiness`, waited for by
`probe.wait_ready`); a process that exits first raises `AsgiAppStartupError` at once,
with its output tail.

uvicorn dies with pytest (`process_backend.spawn`: the parent-death signal), runs in a
process group of its own (stopped as a whole), and inside a pytest run it is recorded
in the run's state directory, where its output file lives too, so a next run reaps it
if even the signal did not reach it.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.config.services import LOOPBACK_HOST
from pytest_ws_resilience.config.settings import ConnectionOptions
from pytest_ws_resilience.errors import AsgiAppStartupError, ServerResourcesUnavailableError
from pytest_ws_resilience.servers.asgi_import import lifespan_hint
from pytest_ws_resilience.servers.asgi_wrap import APP_ENV, LIFESPAN_ENV
from pytest_ws_resilience.servers.growth import ResourceSample
from pytest_ws_resilience.servers.labels import current_owner_pid
from pytest_ws_resilience.servers.probe import wait_served
from pytest_ws_resilience.servers.process_backend import run_state_dir, spawn, terminate_pid
from pytest_ws_resilience.servers.readiness import ReadinessCheck
from pytest_ws_resilience.servers.resources import sample_process_tree
from pytest_ws_resilience.servers.run_state import (
    LOGS_DIR,
    ensure_state_dir,
    forget_process,
    record_process,
)

__all__ = ["AsgiAppProcess", "parse_listening_port"]

logger = logging.getLogger(__name__)

_LISTENING_RE = re.compile(r"Uvicorn running on https?://[^\s:]+:(\d+)")


def parse_listening_port(output: str) -> int | None:
    """The port from uvicorn's "Uvicorn running on http://HOST:PORT" line, if printed."""
    match = _LISTENING_RE.search(output)
    return int(match.group(1)) if match else None


class AsgiAppProcess:
    """An ASGI app served by ``python -m uvicorn`` in a subprocess.

    It answers `probe.ReadinessTarget` (`probe_url`, `exit_reason`, `log_so_far`), so
    `start` waits for it with the one readiness rule.

    Args:
        app_path: the import path (uvicorn imports it in the subprocess).
        path: the WebSocket endpoint's path.
        app_dirs: directories put first on the subprocess's ``PYTHONPATH`` (as
            uvicorn's ``--app-dir``), e.g. the project's rootdir.
        env: the subprocess's environment (default: this process's).
        lifespan: uvicorn's ``--lifespan``: "auto" (used when the app supports it),
            "on" or "off".
        app_env: variables added to that environment (``app_env``, e.g.
            ``DJANGO_SETTINGS_MODULE``).
        connection: what the readiness probes' handshakes carry (headers, Origin).
        unauthenticated: the app checks no credential: a 401/403 to the probe is final.
    """

    def __init__(
        self,
        app_path: AppPath,
        *,
        path: str = "/",
        app_dirs: Sequence[str] = (),
        env: dict[str, str] | None = None,
        lifespan: str = "auto",
        app_env: Sequence[tuple[str, str]] = (),
        connection: ConnectionOptions | None = None,
        unauthenticated: bool = False,
    ) -> None:
        self._app_path = app_path
        self._path = path
        self._app_dirs = tuple(app_dirs)
        self._env = env
        self._lifespan = lifespan
        self._app_env = tuple(app_env)
        self._connection = connection
        self._unauthenticated = unauthenticated
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: Path | None = None
        self._state_dir: Path | None = None
        self._port = 0

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._port else "stopped"
        return f"AsgiAppProcess({self._app_path}, {state})"

    @property
    def app_path(self) -> AppPath:
        return self._app_path

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("AsgiAppProcess is not started; call start() first")
        return f"ws://{LOOPBACK_HOST}:{self._port}{self._path}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and bool(self._port)

    @property
    def pid(self) -> int | None:
        """The uvicorn process's pid while it runs."""
        return None if self._proc is None else self._proc.pid

    def resources(self) -> ResourceSample:
        """What the uvicorn process and its children (``--workers``) hold now.

        Raises:
            ServerResourcesUnavailableError: it is not running.
        """
        what = f"ASGI app {self._app_path} (subprocess)"
        if self._proc is None:
            raise ServerResourcesUnavailableError(f"{what} is not running")
        return sample_process_tree(self._proc.pid, what=what)

    def command(self) -> list[str]:
        """The uvicorn command line. It serves `asgi_wrap` (the app behind the
        lifespan watch), which reads the app's path from the environment
        (`_environment`); by hand, ``python -m uvicorn APP --lifespan MODE`` serves the
        same app."""
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "pytest_ws_resilience.servers.asgi_wrap:app",
            "--factory",
            "--host",
            LOOPBACK_HOST,
            "--port",
            "0",
            "--lifespan",
            self._lifespan,
            "--ws",
            "auto",
            # info prints the "running on" line that carries the port.
            "--log-level",
            "info",
            "--no-access-log",
        ]
        return command

    def _environment(self) -> dict[str, str]:
        env = dict(self._env if self._env is not None else os.environ)
        env.update(dict(self._app_env))
        env[APP_ENV] = str(self._app_path)
        env[LIFESPAN_ENV] = self._lifespan
        paths = [*self._app_dirs, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    # -- the readiness target --------------------------------------------------------

    def probe_url(self) -> str | None:
        """The endpoint's URL once uvicorn printed the port it listens on."""
        if not self._port:
            port = parse_listening_port(self.log_so_far())
            if port is None:
                return None
            self._port = port
        return self.url

    def exit_reason(self) -> str | None:
        """How the process ended (its exit code); None while it runs."""
        proc = self._proc
        if proc is None:
            return "was stopped"
        code = proc.poll()
        return None if code is None else f"exited with code {code} before serving"

    def log_so_far(self) -> str:
        """The process's output (stdout and stderr) so far."""
        output = self._output
        if output is None:
            return ""
        try:
            return output.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Start the subprocess; return once it is up by the one readiness rule.

        Raises:
            AsgiAppStartupError: the process exited (the message holds its output tail).
            WsTimeoutError: not up within ``timeout`` seconds (the message names the
                URL, or that no port was printed, and the last answer).
        """
        if self.running:
            return self
        started_at = time.monotonic()
        self._state_dir = run_state_dir()
        directory = None
        if self._state_dir is not None:
            ensure_state_dir(self._state_dir, owner_pid=current_owner_pid())
            directory = self._state_dir / LOGS_DIR
            directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="ws-app-", suffix=".log", dir=directory)
        self._output = Path(name)
        # The child writes through its own copy of the descriptor; this process reads
        # the file by name (a shared descriptor would share the read offset too).
        with os.fdopen(fd, "wb") as output:
            self._proc = spawn(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=self._app_dirs[0] if self._app_dirs else None,
                start_new_session=True,
            )
        if self._state_dir is not None:
            record_process(
                self._state_dir,
                self._proc.pid,
                what=f"ASGI app {self._app_path} (uvicorn)",
                owner_pid=current_owner_pid(),
            )
        try:
            wait_served(
                self,
                ReadinessCheck(startup_timeout=timeout, unauthenticated=self._unauthenticated),
                what=f"ASGI app {self._app_path} (subprocess)",
                startup_error=AsgiAppStartupError,
                started_at=started_at,
                connection=self._connection,
                hint=lambda text: lifespan_hint(text, self._lifespan),
            )
        except BaseException:
            self.stop(timeout=2.0)
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully, lifespan included), then kill at
        about ``timeout`` seconds. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout * 0.8)
            except subprocess.TimeoutExpired:
                logger.warning("ASGI app %s did not stop on SIGTERM; killing", self._app_path)
                proc.kill()
                try:
                    proc.wait(max(0.5, timeout * 0.2))
                except subprocess.TimeoutExpired:
                    pass
        if proc is not None:
            # Whatever the app started in its group (its own workers) goes with it.
            terminate_pid(proc.pid, max(0.5, timeout * 0.2))
            if self._state_dir is not None:
                forget_process(self._state_dir, proc.pid)
        if self._output is not None:
            self._output.unlink(missing_ok=True)
            self._output = None
        self._port = 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
