"""The user's ASGI app served by uvicorn in a background thread with its own event loop.

As the embedded reference server runs: tests keep any event-loop scope, and the app's
in-memory state lives in the test process. uvicorn binds port 0 itself (the port is
free and held, no race), runs the app's lifespan as configured (``app_lifespan``:
"auto", as uvicorn, uses it when the app supports it; Django Channels' router does
not), and the server counts as up by the one readiness rule (`readiness`, waited for
by `probe.wait_ready`). A startup that fails (import error, exception in the lifespan)
ends the thread, and `start` raises `AsgiAppStartupError` at once, with the app's
traceback (and the ``--ws-app-lifespan=off`` hint when the app looks like it has no
lifespan support). uvicorn's error log (an exception in a handler) is kept while the
server runs, so a failed start attaches it, trimmed (`log_digest`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.config.services import LOOPBACK_HOST
from pytest_ws_resilience.config.settings import ConnectionOptions
from pytest_ws_resilience.errors import AsgiAppStartupError
from pytest_ws_resilience.servers.asgi_import import lifespan_hint, load_app
from pytest_ws_resilience.servers.asgi_lifespan import LifespanWatch
from pytest_ws_resilience.servers.probe import wait_served
from pytest_ws_resilience.servers.readiness import ReadinessCheck

if TYPE_CHECKING:
    import uvicorn

__all__ = ["AsgiAppServer"]

logger = logging.getLogger(__name__)

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]


class _LifespanLogFilter(logging.Filter):
    """Drops uvicorn's own lifespan error records: `AsgiAppServer` reports them itself
    (once, with the traceback), so they would only print the traceback a second time."""

    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}lifespan{os.sep}" not in record.pathname


_LIFESPAN_LOG_FILTER = _LifespanLogFilter()
#: uvicorn's error log kept per server: its first records and its last ones.
_LOG_HEAD_RECORDS = 200
_LOG_TAIL_RECORDS = 2000


class _LogKeeper(logging.Handler):
    """Keeps uvicorn's error log (handler exceptions, with their tracebacks) while a
    server runs: the server's "log" attached, trimmed, to a failed start."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        self.head: list[str] = []
        self.tail: deque[str] = deque(maxlen=_LOG_TAIL_RECORDS)
        self.skipped = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:
            return
        if len(self.head) < _LOG_HEAD_RECORDS:
            self.head.append(text)
            return
        if len(self.tail) == self.tail.maxlen:
            self.skipped += 1
        self.tail.append(text)

    def text(self) -> str:
        skipped = [f"... {self.skipped:,} log records skipped ..."] if self.skipped else []
        return "\n".join([*self.head, *skipped, *self.tail])


class AsgiAppServer:
    """An ASGI app served by uvicorn in a daemon thread with its own event loop.

    Usage::

        with AsgiAppServer(parse_app_path("myapp:app"), path="/ws") as server:
            ...  # connect to server.url from any thread or loop

    It answers `probe.ReadinessTarget` (`probe_url`, `exit_reason`, `log_so_far`), so
    `start` waits for it with the one readiness rule.

    Args:
        app_path: what to import (the import and the factory call happen in the
            server thread, so their errors are startup errors).
        path: the WebSocket endpoint's path, probed for readiness and part of ``url``.
        app: an already imported app object, used instead of importing ``app_path``.
        shutdown_grace: seconds uvicorn waits for open connections at stop.
        lifespan: "auto" (used when the app supports it), "on" or "off".
        env: environment variables set before the app is imported (``app_env``),
            restored at `stop`.
        connection: what the readiness probes' handshakes carry (headers, Origin).
        unauthenticated: the app checks no credential: a 401/403 to the probe is final.
    """

    def __init__(
        self,
        app_path: AppPath,
        *,
        path: str = "/",
        app: Any = None,
        shutdown_grace: float = 2.0,
        lifespan: str = "auto",
        env: Sequence[tuple[str, str]] = (),
        connection: ConnectionOptions | None = None,
        unauthenticated: bool = False,
    ) -> None:
        self._app_path = app_path
        self._path = path
        self._app = app
        self._lifespan = lifespan
        self._env = tuple(env)
        self._saved_env: dict[str, str | None] | None = None
        self._connection = connection
        self._unauthenticated = unauthenticated
        self._log = _LogKeeper()
        self._grace = max(1, round(shutdown_grace))
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._watch: LifespanWatch | None = None
        self._error: str | None = None
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
        return f"ws://{LOOPBACK_HOST}:{self._port}{self._path}"

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and bool(self._port)

    # -- the readiness target --------------------------------------------------------

    def probe_url(self) -> str | None:
        """The endpoint's URL once uvicorn listens (after the lifespan startup)."""
        return self.url if self._port else None

    def exit_reason(self) -> str | None:
        """Why the server thread ended, with the app's traceback; None while it runs."""
        thread = self._thread
        if thread is None:
            return "was stopped"
        if thread.is_alive():
            return None
        detail = self._error
        if detail is None and self._watch is not None and self._watch.failures:
            detail = "\n".join(self._watch.failures)
        return f"failed to start:\n{detail or '(no traceback)'}"

    def log_so_far(self) -> str:
        """uvicorn's error log since `start` (the app's other logging goes through the
        test process's own)."""
        return self._log.text()

    # -- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Serve the app; return once it is up by the one readiness rule.

        Raises:
            AsgiAppStartupError: the app failed to load or its lifespan failed (the
                message holds its traceback); raised as soon as the thread ends.
            WsTimeoutError: not up within ``timeout`` seconds (the message names the
                URL and the last answer).
        """
        started_at = time.monotonic()
        with self._lock:
            if self.running:
                return self
            self._error = None
            self._set_env()
            self._log = _LogKeeper()
            logging.getLogger("uvicorn.error").addHandler(self._log)
            self._thread = threading.Thread(
                target=self._thread_main, name=f"ws-app {self._app_path}", daemon=True
            )
            self._thread.start()
        try:
            wait_served(
                self,
                ReadinessCheck(startup_timeout=timeout, unauthenticated=self._unauthenticated),
                what=f"ASGI app {self._app_path}",
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
            logging.getLogger("uvicorn.error").removeHandler(self._log)
            self._restore_env()

    def _set_env(self) -> None:
        """``app_env`` into ``os.environ`` before the app is imported (in the thread)."""
        if self._saved_env is None and self._env:
            self._saved_env = {name: os.environ.get(name) for name, _ in self._env}
            os.environ.update(dict(self._env))

    def _restore_env(self) -> None:
        saved, self._saved_env = self._saved_env, None
        for name, value in (saved or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the server thread -----------------------------------------------------------

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
        self._watch = LifespanWatch(app, self._lifespan)
        config = uvicorn.Config(
            self._watch,
            host=LOOPBACK_HOST,
            port=0,  # uvicorn binds it: the port is free and held, no race
            lifespan=self._lifespan,  # type: ignore[arg-type]
            ws="auto",
            interface="asgi3",
            log_level="warning",
            log_config=None,  # leave the test process's logging configuration alone
            access_log=False,
            timeout_graceful_shutdown=self._grace,
        )
        on_started = self._on_started

        class _Server(uvicorn.Server):
            """Gives the wait an address the moment the lifespan ran and the socket
            listens."""

            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                # A failed lifespan startup: uvicorn before 0.50 returns here with no
                # listening socket (0.50 and later raise SystemExit instead).
                if not self.lifespan.should_exit:
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
