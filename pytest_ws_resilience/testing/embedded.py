"""The reference server in a background thread with its own event loop.

As pytest-httpserver does: the server does not live on the test's loop, so tests keep
whatever event-loop scope they like (function, module, session), and a session-wide
server survives every per-test loop. All calls here are plain, blocking and bounded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from types import TracebackType
from typing import Self

from pytest_ws_resilience.errors import WsResilienceError, WsTimeoutError
from pytest_ws_resilience.testing.faults import parse_faults
from pytest_ws_resilience.testing.server import ReferenceServer, ServerStats
from pytest_ws_resilience.testing.server_config import ServerConfig

__all__ = ["EmbeddedServer"]

logger = logging.getLogger(__name__)

#: Bound of a cross-thread call into the server loop (set_faults).
_CALL_TIMEOUT_S = 5.0


class EmbeddedServer:
    """A `ReferenceServer` running in a daemon thread.

    Usage::

        with EmbeddedServer(ServerConfig(secret=tokens.secret)) as server:
            ...  # connect to server.url from any thread or loop

    Args:
        config: settings of the server (see `ServerConfig`).
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self._config = config if config is not None else ServerConfig(require_auth=False)
        self._server: ReferenceServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._stop_timeout = 5.0
        self._url = ""
        self._port = 0

    def __repr__(self) -> str:
        state = f"url={self._url!r}" if self.running else "stopped"
        return f"EmbeddedServer({state}, faults={sorted(self.faults)!r})"

    def __str__(self) -> str:
        return self._url

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        """Start the server thread; return once the server listens.

        Raises:
            WsTimeoutError: not listening within ``timeout`` seconds.
            WsResilienceError: the server failed to start (e.g. the port is taken).
        """
        with self._lock:
            if self.running:
                return self
            self._ready.clear()
            self._error = None
            self._stop_requested = False
            self._thread = threading.Thread(
                target=self._thread_main, name="ws-reference-server", daemon=True
            )
            self._thread.start()
        if not self._ready.wait(timeout):
            self.stop(timeout=1.0)
            raise WsTimeoutError(f"embedded reference server did not start within {timeout} s")
        if self._error is not None:
            error = self._error
            self.stop(timeout=1.0)
            raise WsResilienceError(
                f"embedded reference server failed to start on "
                f"{self._config.host}:{self._config.port}: {error}"
            ) from error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server and join its thread, within about ``timeout`` seconds.

        Idempotent; safe to call when never started.
        """
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._stop_timeout = max(timeout - 0.5, timeout * 0.8)
            # Flag first, loop second: a thread that has no loop yet will see the flag.
            self._stop_requested = True
            loop = self._loop
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self._wake_stop)
                except RuntimeError:  # the loop already closed: the thread is ending
                    pass
            if thread is not threading.current_thread():
                thread.join(timeout)
                if thread.is_alive():
                    logger.warning("embedded reference server thread did not end in %s s", timeout)
            self._thread = None
            self._server = None
            self._url = ""
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

    # -- public state --------------------------------------------------------------

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._server is not None

    @property
    def config(self) -> ServerConfig:
        return self._config

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/``.

        Raises:
            RuntimeError: the server is not started.
        """
        if not self._url:
            raise RuntimeError("EmbeddedServer is not started; call start() first")
        return self._url

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("EmbeddedServer is not started; call start() first")
        return self._port

    @property
    def host(self) -> str:
        server = self._server
        return server.host if server is not None else self._config.host

    @property
    def stats(self) -> ServerStats:
        """A snapshot of the server's counters (zeros before start)."""
        server = self._server
        return server.stats.snapshot() if server is not None else ServerStats()

    @property
    def faults(self) -> frozenset[str]:
        server = self._server
        return server.faults if server is not None else self._config.faults

    def set_faults(self, *names: str) -> None:
        """Turn on exactly ``names`` (none: all off), from any thread.

        Before start, the faults become part of the config the server starts with.

        Raises:
            ValueError: an unknown fault name.
        """
        faults = parse_faults(names)
        server, loop = self._server, self._loop
        if server is None or loop is None or not self.running:
            self._config = self._config.with_changes(faults=faults)
            return
        if threading.current_thread() is self._thread:
            server.set_faults(*faults)
            return

        async def apply() -> None:
            server.set_faults(*faults)

        asyncio.run_coroutine_threadsafe(apply(), loop).result(timeout=_CALL_TIMEOUT_S)

    # -- the server thread ---------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # report to start() rather than die silently
            self._error = self._error or exc
        finally:
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._loop = None
                loop.close()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        server = ReferenceServer(self._config)
        try:
            await server.start()
        except Exception as exc:
            self._error = exc
            return
        self._server = server
        self._url = server.url
        self._port = server.port
        self._ready.set()
        try:
            if not self._stop_requested:
                await self._stop_event.wait()
        finally:
            await server.stop(self._stop_timeout)

    def _wake_stop(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()
