"""Serve the user's own ASGI app (FastAPI, Starlette, ...) with uvicorn, for ``--ws-app``.

Library code (no pytest import). Two ways to run the app, with one interface:

- `AsgiAppServer`: uvicorn in a background thread with its own event loop (as the
  embedded reference server runs), so tests keep any event-loop scope and the app's
  in-memory state lives in the test process;
- `AsgiAppProcess`: ``python -m uvicorn`` in a subprocess, for apps that need a process
  of their own (signal handlers, global state, their own event-loop policy).

Both bind a free loopback port (uvicorn binds port 0 itself, so there is no race for
the port), run the app's lifespan, and count as ready only after a real WebSocket
handshake on the endpoint path. A startup that fails (import error, exception in the
lifespan, process exit) raises `AsgiAppStartupError` at once, with the app's traceback.

uvicorn is the optional extra ``asgi`` and is imported only when an app is served.
The pure helpers (`parse_app_path`, `handshake_ready`, `parse_listening_port`) come
first and do no I/O.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.errors import (
    AsgiAppImportError,
    AsgiAppStartupError,
    AsgiExtraMissingError,
    WsTimeoutError,
)

if TYPE_CHECKING:
    import uvicorn

__all__ = [
    "ASGI_EXTRA_HINT",
    "AppServer",
    "AsgiAppProcess",
    "AsgiAppServer",
    "check_app_importable",
    "handshake_ready",
    "load_app",
    "open_app_server",
    "parse_listening_port",
    "require_uvicorn",
]

logger = logging.getLogger(__name__)

#: How to install what ``--ws-app`` needs; part of the missing-extra error.
ASGI_EXTRA_HINT = "pip install 'pytest-ws-resilience[asgi]'"
#: Handshake answers that prove the endpoint exists and answers: switched, or an auth
#: rejection of the probe (which carries no token).
_READY_STATUSES = frozenset({101, 401, 403})
#: Pause between readiness probes, and the longest single probe.
_PROBE_PAUSE_S = 0.05
_PROBE_MAX_S = 2.0
#: Lines of a failed subprocess's output shown in the error.
_TAIL_LINES = 40
_LISTENING_RE = re.compile(r"Uvicorn running on https?://[^\s:]+:(\d+)")


# -- errors ----------------------------------------------------------------------------


# -- pure helpers ----------------------------------------------------------------------


def handshake_ready(status: int) -> bool:
    """True when a probe's handshake answer shows the WebSocket endpoint is served.

    101 (switched) or an auth rejection (401/403: the endpoint exists and checks
    tokens). A 404 or a 5xx means "not (yet) the endpoint": keep probing.
    """
    return status in _READY_STATUSES


def parse_listening_port(output: str) -> int | None:
    """The port from uvicorn's "Uvicorn running on http://HOST:PORT" line, if printed."""
    match = _LISTENING_RE.search(output)
    return int(match.group(1)) if match else None


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(no output)"


# -- importing -------------------------------------------------------------------------


def require_uvicorn(subject: str = "--ws-app") -> None:
    """Fail with the install hint when uvicorn (the ``asgi`` extra) cannot be imported.

    Raises:
        AsgiExtraMissingError: one line naming the extra.
    """
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise AsgiExtraMissingError(f"{subject} needs uvicorn: {ASGI_EXTRA_HINT}") from None


def _is_missing(err: ModuleNotFoundError, module: str) -> bool:
    """True when the error is about ``module`` itself (or a parent package), not about
    something the app imports."""
    parts = module.split(".")
    return err.name in {".".join(parts[: i + 1]) for i in range(len(parts))}


def check_app_importable(app: AppPath, *, subject: str, execute: bool = True) -> None:
    """Check a configuration mistake early: the module or the attribute does not exist.

    With ``execute`` the module is imported (the attribute is checked too); without it
    only located (for a subprocess app, so its code does not run in this process).
    An exception raised by the app's own code is left for startup, which reports it
    with its traceback (`load_app`): it is not a mistake in the path.

    Raises:
        AsgiAppImportError: one line, e.g. ``--ws-app=nope.mod:app: cannot import
            module 'nope.mod' (ModuleNotFoundError: No module named 'nope')``.
    """
    try:
        if execute:
            module = importlib.import_module(app.module)
        else:
            if importlib.util.find_spec(app.module) is None:
                raise ModuleNotFoundError(f"No module named {app.module!r}", name=app.module)
            return
    except ModuleNotFoundError as err:
        if _is_missing(err, app.module):
            raise AsgiAppImportError(
                f"{subject}: cannot import module {app.module!r} ({type(err).__name__}: {err})"
            ) from None
        return
    except Exception:
        return  # the app's own bug: reported with its traceback when the server starts
    try:
        _resolve_attr(module, app.attr)
    except AttributeError:
        raise AsgiAppImportError(
            f"{subject}: module {app.module!r} has no attribute {app.attr!r}"
        ) from None


def _resolve_attr(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def load_app(app: AppPath) -> Any:
    """Import the app (calling the factory for ``module:factory()``).

    Raises:
        AsgiAppStartupError: anything the import or the factory raised, with its
            traceback.
    """
    try:
        target = _resolve_attr(importlib.import_module(app.module), app.attr)
        return target() if app.factory else target
    except Exception:
        raise AsgiAppStartupError(
            f"ASGI app {app} failed to load:\n{traceback.format_exc()}"
        ) from None


# -- readiness -------------------------------------------------------------------------


async def _wait_for_handshake(
    url: str, *, what: str, deadline: float, budget_s: float, failure: Callable[[], str | None]
) -> None:
    """Probe ``url`` with real handshakes until one shows the endpoint is served."""
    last = "no answer yet"
    while True:
        reason = failure()
        if reason is not None:
            raise AsgiAppStartupError(reason)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WsTimeoutError(
                f"{what} did not answer a WebSocket handshake on {url} within {budget_s:g} s; "
                f"last answer: {last}"
            )
        try:
            async with connect(
                url, proxy=None, open_timeout=min(_PROBE_MAX_S, remaining), close_timeout=1.0
            ):
                return
        except InvalidStatus as err:
            status = err.response.status_code
            if handshake_ready(status):
                return
            last = f"HTTP {status}"
        except TimeoutError:
            last = "handshake timed out"
        except ConnectionRefusedError:
            last = "connection refused"
        except Exception as err:  # any other handshake trouble: keep probing, say what
            last = f"{type(err).__name__}: {err}"
        await asyncio.sleep(_PROBE_PAUSE_S)


def _run_probe(
    url: str, *, what: str, deadline: float, timeout: float, failure: Callable[[], str | None]
) -> None:
    """Run the async probe from plain code, in a short-lived thread with its own loop,
    so it works even when the caller's thread already runs an event loop."""
    errors: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(
                _wait_for_handshake(
                    url, what=what, deadline=deadline, budget_s=timeout, failure=failure
                )
            )
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=main, name="ws-app-probe", daemon=True)
    thread.start()
    # Every probe is bounded by the deadline; the margin covers the last one's close.
    thread.join(max(0.0, deadline - time.monotonic()) + _PROBE_MAX_S + 1.0)
    if thread.is_alive():
        raise WsTimeoutError(f"{what}: the readiness probe of {url} did not end in time")
    if errors:
        raise errors[0]


# -- the servers -----------------------------------------------------------------------


class AppServer(Protocol):
    """What `ServerUnderTest` needs of a served app, whichever way it runs."""

    @property
    def url(self) -> str: ...

    @property
    def app_path(self) -> AppPath: ...

    def start(self, timeout: float = 10.0) -> Self: ...

    def stop(self, timeout: float = 5.0) -> None: ...


_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]


class _LifespanWatch:
    """ASGI middleware keeping the app's lifespan failures (uvicorn only logs them).

    Starlette turns an exception in the lifespan into a ``lifespan.startup.failed``
    message carrying the traceback; other apps raise. Both end up in ``failures``.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.failures: list[str] = []

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched_send(message: _Message) -> None:
            if message["type"] in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
                self.failures.append(str(message.get("message") or message["type"]))
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except BaseException:
            if not self.failures:  # Starlette sends the traceback, then raises again
                self.failures.append(traceback.format_exc())
            raise


class _LifespanLogFilter(logging.Filter):
    """Drops uvicorn's own lifespan error records: `AsgiAppServer` reports them itself
    (once, with the traceback), so they would only print the traceback a second time."""

    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}lifespan{os.sep}" not in record.pathname


_LIFESPAN_LOG_FILTER = _LifespanLogFilter()


def _endpoint_url(port: int, path: str) -> str:
    return f"ws://127.0.0.1:{port}{path}"


class AsgiAppServer:
    """An ASGI app served by uvicorn in a daemon thread with its own event loop.

    Usage::

        with AsgiAppServer(parse_app_path("myapp:app"), path="/ws") as server:
            ...  # connect to server.url from any thread or loop

    Args:
        app_path: what to import (the import and the factory call happen in the
            server thread, so their errors are startup errors).
        path: the WebSocket endpoint's path, probed for readiness and part of ``url``.
        app: an already imported app object, used instead of importing ``app_path``.
        shutdown_grace: seconds uvicorn waits for open connections at stop.
    """

    def __init__(
        self,
        app_path: AppPath,
        *,
        path: str = "/",
        app: Any = None,
        shutdown_grace: float = 2.0,
    ) -> None:
        self._app_path = app_path
        self._path = path
        self._app = app
        self._grace = max(1, round(shutdown_grace))
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._watch: _LifespanWatch | None = None
        self._error: str | None = None
        self._started = threading.Event()
        self._lock = threading.Lock()
        self._port = 0

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._port else "stopped"
        return f"AsgiAppServer({self._app_path}, {state})"

    @property
    def app_path(self) -> AppPath:
        return self._app_path

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT<path>``.

        Raises:
            RuntimeError: not started.
        """
        if not self._port:
            raise RuntimeError("AsgiAppServer is not started; call start() first")
        return _endpoint_url(self._port, self._path)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and bool(self._port)

    def start(self, timeout: float = 10.0) -> Self:
        """Serve the app; return once a real WebSocket handshake on the path answers.

        Raises:
            AsgiAppStartupError: the app failed to load or its lifespan failed (the
                message holds its traceback); raised as soon as the thread ends.
            WsTimeoutError: not answering within ``timeout`` seconds (the message names
                the URL and the last answer).
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if self.running:
                return self
            self._error = None
            self._started.clear()
            self._thread = threading.Thread(
                target=self._thread_main, name=f"ws-app {self._app_path}", daemon=True
            )
            self._thread.start()
        try:
            self._wait_listening(deadline, timeout)
            _run_probe(
                self.url,
                what=f"ASGI app {self._app_path}",
                deadline=deadline,
                timeout=timeout,
                failure=self._failure,
            )
        except BaseException:
            self.stop(timeout=2.0)
            raise
        return self

    def _wait_listening(self, deadline: float, timeout: float) -> None:
        while not self._started.wait(0.02):
            reason = self._failure()
            if reason is not None:
                raise AsgiAppStartupError(reason)
            if time.monotonic() >= deadline:
                raise WsTimeoutError(
                    f"ASGI app {self._app_path} did not finish its startup (lifespan) "
                    f"within {timeout:g} s"
                )

    def _failure(self) -> str | None:
        """Why the server thread ended early, or None while it lives."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            return None
        detail = self._error
        if detail is None and self._watch is not None and self._watch.failures:
            detail = "\n".join(self._watch.failures)
        return f"ASGI app {self._app_path} failed to start:\n{detail or '(no traceback)'}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (lifespan shutdown runs) and join the thread, within about
        ``timeout`` seconds; after most of it, open connections are dropped.

        Idempotent; safe to call when never started.
        """
        with self._lock:
            thread, server = self._thread, self._server
            if thread is None:
                return
            if server is not None:
                server.should_exit = True  # polled by uvicorn's main loop every 0.1 s
            thread.join(timeout * 0.8)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout * 0.2)
            if thread.is_alive():
                logger.warning("ASGI app %s did not stop within %s s", self._app_path, timeout)
            self._thread = None
            self._server = None
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

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        except AsgiAppStartupError as err:
            self._error = str(err).partition("\n")[2] or str(err)
        except SystemExit:
            pass  # uvicorn's "startup failed" exit: the lifespan watch holds the reason
        except BaseException:
            self._error = traceback.format_exc()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _serve(self) -> None:
        import uvicorn

        app = self._app if self._app is not None else load_app(self._app_path)
        self._watch = _LifespanWatch(app)
        config = uvicorn.Config(
            self._watch,
            host="127.0.0.1",
            port=0,  # uvicorn binds it: the port is free and held, no race
            lifespan="on",
            ws="auto",
            interface="asgi3",
            log_level="warning",
            log_config=None,  # leave the test process's logging configuration alone
            access_log=False,
            timeout_graceful_shutdown=self._grace,
        )
        on_started = self._on_started

        class _Server(uvicorn.Server):
            """Tells `start` the moment the lifespan ran and the socket listens."""

            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                on_started(self)

        server = _Server(config)
        self._server = server
        logging.getLogger("uvicorn.error").addFilter(_LIFESPAN_LOG_FILTER)  # idempotent
        await server.serve()
        if server.started and self._watch.failures:
            logger.warning(
                "ASGI app %s: lifespan shutdown failed:\n%s",
                self._app_path,
                "\n".join(self._watch.failures),
            )

    def _on_started(self, server: uvicorn.Server) -> None:
        self._port = server.servers[0].sockets[0].getsockname()[1]
        self._started.set()


class AsgiAppProcess:
    """An ASGI app served by ``python -m uvicorn`` in a subprocess.

    uvicorn binds port 0 and prints the port it got; the process's output goes to a
    temporary file, whose tail is the error when the app does not start.

    Args:
        app_path: the import path (uvicorn imports it in the subprocess).
        path: the WebSocket endpoint's path.
        app_dirs: directories put first on the subprocess's ``PYTHONPATH`` (as
            uvicorn's ``--app-dir``), e.g. the project's rootdir.
        env: the subprocess's environment (default: this process's).
    """

    def __init__(
        self,
        app_path: AppPath,
        *,
        path: str = "/",
        app_dirs: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self._app_path = app_path
        self._path = path
        self._app_dirs = tuple(app_dirs)
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: Path | None = None
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
        return _endpoint_url(self._port, self._path)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and bool(self._port)

    def command(self) -> list[str]:
        """The uvicorn command line (shown in errors, handy to run by hand)."""
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            self._app_path.uvicorn_target,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--lifespan",
            "on",
            "--ws",
            "auto",
            # info prints the "running on" line that carries the port.
            "--log-level",
            "info",
            "--no-access-log",
        ]
        if self._app_path.factory:
            command.append("--factory")
        return command

    def _environment(self) -> dict[str, str]:
        env = dict(self._env if self._env is not None else os.environ)
        paths = [*self._app_dirs, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def start(self, timeout: float = 10.0) -> Self:
        """Start the subprocess; return once a real handshake on the path answers.

        Raises:
            AsgiAppStartupError: the process exited (the message holds its output tail).
            WsTimeoutError: no port or no handshake within ``timeout`` seconds.
        """
        if self.running:
            return self
        deadline = time.monotonic() + timeout
        fd, name = tempfile.mkstemp(prefix="ws-app-", suffix=".log")
        self._output = Path(name)
        # The child writes through its own copy of the descriptor; this process reads
        # the file by name (a shared descriptor would share the read offset too).
        with os.fdopen(fd, "wb") as output:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                cwd=self._app_dirs[0] if self._app_dirs else None,
            )
        try:
            self._port = self._wait_for_port(deadline, timeout)
            _run_probe(
                self.url,
                what=f"ASGI app {self._app_path} (subprocess)",
                deadline=deadline,
                timeout=timeout,
                failure=self._failure,
            )
        except BaseException:
            self.stop(timeout=2.0)
            raise
        return self

    def _read_output(self) -> str:
        output = self._output
        if output is None:
            return ""
        try:
            return output.read_bytes().decode("utf-8", "replace")
        except OSError:
            return ""

    def _failure(self) -> str | None:
        proc = self._proc
        if proc is None or proc.poll() is None:
            return None
        return (
            f"ASGI app {self._app_path} (subprocess) exited with code {proc.returncode} "
            f"before serving; its output ends with:\n{_tail(self._read_output())}"
        )

    def _wait_for_port(self, deadline: float, timeout: float) -> int:
        while True:
            port = parse_listening_port(self._read_output())
            if port is not None:
                return port
            reason = self._failure()
            if reason is not None:
                raise AsgiAppStartupError(reason)
            if time.monotonic() >= deadline:
                raise WsTimeoutError(
                    f"ASGI app {self._app_path} (subprocess) did not start listening within "
                    f"{timeout:g} s; its output ends with:\n{_tail(self._read_output())}"
                )
            time.sleep(0.02)

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


def open_app_server(
    app_path: AppPath,
    *,
    path: str = "/",
    in_subprocess: bool = False,
    app_dirs: Sequence[str] = (),
    timeout: float = 10.0,
) -> AsgiAppServer | AsgiAppProcess:
    """Start ``app_path`` the configured way and return it once it answers handshakes.

    Raises:
        AsgiExtraMissingError: uvicorn is not installed.
        AsgiAppStartupError: the app failed to start (with its traceback).
        WsTimeoutError: it did not answer within ``timeout`` seconds.
    """
    require_uvicorn()
    for directory in reversed(app_dirs):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    server: AsgiAppServer | AsgiAppProcess
    if in_subprocess:
        server = AsgiAppProcess(app_path, path=path, app_dirs=app_dirs)
    else:
        server = AsgiAppServer(app_path, path=path)
    return server.start(timeout=timeout)
