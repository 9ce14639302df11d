"""Which server a run talks to: a configured URL, the user's ASGI app, a local command
(``--ws-server-cmd``), or the embedded reference server.

Library code (no pytest): the `ws_server` fixture calls `open_server_under_test` once per
session and `ServerUnderTest.close` at the end. Whatever it starts counts as up by the
one readiness rule (`readiness`), waited for by `probe.wait_ready`: the embedded server
through `EmbeddedTarget`, the app and the command through their own runners.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.routes import url_for
from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import ServerResourcesUnavailableError, WsResilienceError
from pytest_ws_resilience.redaction import redact

# What serves an app, a command or the embedded server is imported by the branch that
# starts it: a run against a configured URL (staging) loads none of it, and its loggers
# do not join the ones pytest's log capture walks at every phase of every test.
if TYPE_CHECKING:
    from pytest_ws_resilience.servers.asgi_app import AppServer
    from pytest_ws_resilience.servers.growth import ResourceSample
    from pytest_ws_resilience.servers.handle import ServiceHandle
    from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = [
    "SERVER_CMD_SECRET_ENV",
    "EmbeddedTarget",
    "ServerUnderTest",
    "open_server_under_test",
    "server_cmd_spec",
    "start_embedded_server",
    "token_factory_for",
]

#: The variable a ``--ws-server-cmd`` process finds the run's HS256 secret in (the
#: reference server reads it by default), so the secret never appears on a command line.
SERVER_CMD_SECRET_ENV = "WS_RESILIENCE_SECRET"
#: The name of the ``--ws-server-cmd`` process as a service (its log file, messages).
SERVER_CMD_SERVICE = "server-under-test"

#: An app's startup (imports, lifespan) may well take longer than one handshake.
_APP_STARTUP_MIN_S = 30.0


@dataclass(frozen=True)
class EmbeddedTarget:
    """The embedded reference server as a `probe.ReadinessTarget`: `EmbeddedServer`
    itself knows only that its socket listens; this lets the one rule check that it
    answers a handshake too."""

    server: EmbeddedServer

    def probe_url(self) -> str | None:
        return self.server.url if self.server.running else None

    def exit_reason(self) -> str | None:
        return None if self.server.running else "stopped before it answered a handshake"

    def log_so_far(self) -> str:
        return ""  # it logs through the test process's own logging


def start_embedded_server(config: ServerConfig, timeout: float) -> EmbeddedServer:
    """Start the embedded server and return it once it is up by the one rule (its
    probe carries no token: the 401 of an authenticating server proves it serves).

    Raises:
        WsTimeoutError: not up within ``timeout`` seconds.
        WsResilienceError: it failed to start, or stopped before it answered.
    """
    from pytest_ws_resilience.servers.probe import wait_served
    from pytest_ws_resilience.servers.readiness import DEFAULT_ATTEMPT_TIMEOUT_S, ReadinessCheck
    from pytest_ws_resilience.testing import EmbeddedServer

    started_at = time.monotonic()
    embedded = EmbeddedServer(config).start(timeout=timeout)
    check = ReadinessCheck(
        startup_timeout=timeout, attempt_timeout=min(timeout, DEFAULT_ATTEMPT_TIMEOUT_S)
    )
    try:
        wait_served(
            EmbeddedTarget(embedded),
            check,
            what="embedded reference server",
            startup_error=WsResilienceError,
            started_at=started_at,
        )
    except BaseException:
        embedded.stop(timeout=1.0)
        raise
    return embedded


@dataclass
class ServerUnderTest:
    """The server under test: ``url`` (a ``ws://`` string) and the handle of what the
    plugin started (the embedded reference server, or the user's app served by uvicorn).

    ``str(server) == server.url`` so it can be passed wherever a URL is expected.
    """

    url: str
    source: str
    embedded: EmbeddedServer | None = field(default=None, repr=False)
    app: AppServer | None = field(default=None, repr=False)
    #: The ``--ws-server-cmd`` process, run as a local service.
    process: ServiceHandle | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.url

    def url_for(self, path: str, **params: Any) -> str:
        """The ``ws://`` URL of another endpoint of this server: ``path`` is a template
        whose ``{name}`` placeholders are filled from ``params`` (percent-quoted).

        ``ws_server.url_for("/ws/chat/{room}/", room="lobby")`` ->
        ``ws://127.0.0.1:PORT/ws/chat/lobby/``. The scheme, host and port are the
        server's; its configured path is replaced (a query in ``path`` is kept).

        Raises:
            ValueError: a path not starting with "/", a placeholder without a value, or
                a value without a placeholder (one line naming it).
        """
        return url_for(self.url, path, params)

    def describe(self) -> str:
        """What was tested, in one phrase: ``command '...' at ws://...``, ``app X
        (served by uvicorn) at ws://...``, the embedded server or the URL."""
        where = redact(self.url)
        if self.embedded is not None:
            return f"embedded reference server at {where}"
        if self.app is not None:
            return f"app {self.app.app_path} (served by uvicorn) at {where}"
        if self.process is not None:
            command = self.process.spec.command or ""
            shown = command if isinstance(command, str) else shlex.join(command)
            return f"command {redact(shown)!r} at {where}"
        return where

    def __repr__(self) -> str:
        if self.embedded is not None:
            kind = "embedded reference server"
        elif self.app is not None:
            kind = f"app {self.app.app_path} served by uvicorn"
        elif self.process is not None:
            kind = f"command (pid {self.process.pid}), {self.source}"
        else:
            kind = self.source
        return f"ServerUnderTest(url={redact(self.url)!r}, {kind})"

    def resources(self) -> ResourceSample:
        """What the server holds now (RSS, open fds, threads, TCP sockets) when the plugin
        started it as a process of its own: ``--ws-server-cmd``, ``--ws-app`` with
        ``--ws-app-subprocess`` (the process and its children: forked workers count).
        Blocking: from async code, ``await asyncio.to_thread(ws_server.resources)``;
        ``ws_storm.cycles`` samples it by itself.

        Raises:
            ServerResourcesUnavailableError: the embedded server or an app in a thread
                (they run inside the test process), a server the plugin did not start,
                or one that is gone; one line saying why and what to use instead.
        """
        from pytest_ws_resilience.servers.asgi_process import AsgiAppProcess
        from pytest_ws_resilience.servers.resources import in_process_unavailable, not_started_here

        if self.process is not None:
            return self.process.resources()
        if isinstance(self.app, AsgiAppProcess):
            return self.app.resources()
        if self.app is not None:
            raise in_process_unavailable(
                f"the ASGI app {self.app.app_path} (served in a thread)",
                "add --ws-app-subprocess",
            )
        if self.embedded is not None:
            raise in_process_unavailable(
                "the embedded reference server",
                '--ws-server-cmd "ws-resilience-server --port {port}"',
            )
        if "xdist controller" in self.source:  # --ws-app-share: served by another process
            raise ServerResourcesUnavailableError(
                f"the server at {redact(self.url)} ({self.source}) runs in the controller, "
                "not in this worker; resources unknown (without --ws-app-share, with "
                "--ws-app-subprocess, each worker serves and measures its own)"
            )
        raise not_started_here(redact(self.url))

    @property
    def is_embedded(self) -> bool:
        return self.embedded is not None

    def set_faults(self, *names: str) -> None:
        """Turn on exactly ``names`` on the embedded reference server (none: all off).

        The server is shared by the session: prefer `faults`, which restores them.
        """
        self._embedded_or_raise("set_faults").set_faults(*names)

    @contextmanager
    def faults(self, *names: str) -> Iterator[None]:
        """``with ws_server.faults("leak"):`` faults on inside the block, restored after."""
        embedded = self._embedded_or_raise("faults")
        before = embedded.faults
        embedded.set_faults(*names)
        try:
            yield
        finally:
            embedded.set_faults(*before)

    def _embedded_or_raise(self, action: str) -> EmbeddedServer:
        if self.embedded is None:
            raise RuntimeError(
                f"{action} needs the embedded reference server; this run uses {redact(self.url)}"
            )
        return self.embedded

    def close(self, timeout: float = 5.0) -> None:
        """Stop the embedded server, the app (bounded; the app's lifespan shutdown runs)
        or the command (SIGTERM, SIGKILL after ``timeout``); nothing to do for an
        external URL."""
        if self.embedded is not None:
            self.embedded.stop(timeout=timeout)
        if self.app is not None:
            self.app.stop(timeout=timeout)
        if self.process is not None:
            self.process.stop(timeout)


def token_factory_for(settings: WsSettings) -> TokenFactory:
    """The `TokenFactory` that mints tokens the server under test accepts.

    RS256 when a private key is configured, HS256 with the configured secret, else HS256
    with the run's secret (``settings.keys.run_secret``, drawn once per run and shared with
    xdist workers) or, outside pytest, a fresh random one. The embedded server, a
    ``--ws-server-cmd`` process and the services are given that secret.
    """
    if settings.keys.private_key is not None:
        return TokenFactory(
            private_key=settings.keys.private_key,
            public_key=settings.keys.public_key,
            audience=settings.keys.audience,
            issuer=settings.keys.issuer,
        )
    return TokenFactory(
        settings.keys.secret or settings.keys.run_secret,
        audience=settings.keys.audience,
        issuer=settings.keys.issuer,
    )


def server_cmd_spec(settings: WsSettings, tokens: TokenFactory) -> ServiceSpec:
    """The ``--ws-server-cmd`` command as a local-process `ServiceSpec`.

    Healthy after an authenticated WebSocket handshake on ``settings.server.path`` (so a server
    that answers 401 to a token it cannot verify is reported, not taken as up); under
    HS256 the process finds the run's secret in ``$WS_RESILIENCE_SECRET``. An
    unauthenticated server (``auth_methods = ["none"]``) is probed without a token and
    given no secret.
    """
    assert settings.server.command is not None
    env: dict[str, str] = {}
    if tokens.algorithm == "HS256" and tokens.secret is not None and not settings.unauthenticated:
        env[SERVER_CMD_SECRET_ENV] = tokens.secret
    connect = settings.connect_timeout.value
    return ServiceSpec(
        SERVER_CMD_SERVICE,
        command=settings.server.command,
        env=env,
        path=settings.server.path,
        health="websocket",
        auth=not settings.unauthenticated,
        startup_timeout=max(connect, _APP_STARTUP_MIN_S),
        attempt_timeout=min(connect, 2.0),
        cwd=settings.project_dir,
    )


def open_server_under_test(settings: WsSettings, tokens: TokenFactory) -> ServerUnderTest:
    """Return the configured server, or start the user's app (``settings.server.app``) or the
    embedded reference server on a free loopback port.

    Raises:
        AsgiAppStartupError: the app failed to start (the message has its traceback).
        WsTimeoutError: the app or the server did not answer in time.
        ServiceError: the ``--ws-server-cmd`` process exited or never answered (the
            message has its last output lines).
    """
    if settings.server.url is not None:
        return ServerUnderTest(url=settings.server.url, source=settings.server.url_source)
    if settings.server.command is not None:
        from pytest_ws_resilience.servers.handle import ServiceHandle

        handle = ServiceHandle(
            server_cmd_spec(settings, tokens),
            token_factory=tokens,
            settings=settings,
            path_setting="--ws-path / path",
        ).start()
        return ServerUnderTest(url=handle.url, source=settings.server.url_source, process=handle)
    if settings.server.app is not None:
        from pytest_ws_resilience.config.app_path import parse_app_path
        from pytest_ws_resilience.servers.asgi_app import open_app_server

        app = open_app_server(
            parse_app_path(settings.server.app),
            path=settings.server.path,
            in_subprocess=settings.server.app_subprocess,
            app_dirs=settings.server.app_dirs,
            timeout=max(settings.connect_timeout.value, _APP_STARTUP_MIN_S),
            lifespan=settings.server.app_lifespan,
            env=settings.server.app_env,
            connection=settings.connection,
            unauthenticated=settings.unauthenticated,
        )
        return ServerUnderTest(url=app.url, source=settings.server.app_source, app=app)
    from pytest_ws_resilience.testing import ServerConfig

    config = ServerConfig(
        secret=tokens.secret,
        public_key=tokens.public_key if tokens.algorithm == "RS256" else None,
        audience=settings.keys.audience,
        issuer=settings.keys.issuer,
        auth_query_param=settings.auth_query_param,
        auth_cookie=settings.auth_cookie,
        auth_subprotocol=settings.auth_subprotocol,
        max_message_size=settings.max_message_size,
        recv_timeout=settings.recv_timeout.value,
        # auth_methods = ["none"] against the embedded server: it checks no token either.
        require_auth=not settings.unauthenticated,
    )
    embedded = start_embedded_server(config, settings.connect_timeout.value)
    return ServerUnderTest(url=embedded.url, source="embedded", embedded=embedded)
