"""Which server a run talks to: a configured URL, the user's ASGI app, or the embedded
reference server.

Library code (no pytest): the `ws_server` fixture calls `open_server_under_test` once per
session and `ServerUnderTest.close` at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pytest_ws_resilience.asgi import AppServer, open_app_server, parse_app_path
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.settings import WsSettings
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig
from pytest_ws_resilience.tokens import TokenFactory

__all__ = ["ServerUnderTest", "open_server_under_test", "token_factory_for"]

#: An app's startup (imports, lifespan) may well take longer than one handshake.
_APP_STARTUP_MIN_S = 30.0


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

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        if self.embedded is not None:
            kind = "embedded reference server"
        elif self.app is not None:
            kind = f"app {self.app.app_path} served by uvicorn"
        else:
            kind = self.source
        return f"ServerUnderTest(url={redact(self.url)!r}, {kind})"

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
        """Stop the embedded server or the app (bounded; the app's lifespan shutdown
        runs); nothing to do for an external URL."""
        if self.embedded is not None:
            self.embedded.stop(timeout=timeout)
        if self.app is not None:
            self.app.stop(timeout=timeout)


def token_factory_for(settings: WsSettings) -> TokenFactory:
    """The `TokenFactory` that mints tokens the server under test accepts.

    RS256 when a private key is configured, HS256 with the configured secret, else HS256
    with a fresh random secret (which the embedded server is then given).
    """
    if settings.jwt_private_key is not None:
        return TokenFactory(
            private_key=settings.jwt_private_key,
            public_key=settings.jwt_public_key,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
    return TokenFactory(
        settings.jwt_secret, audience=settings.jwt_audience, issuer=settings.jwt_issuer
    )


def open_server_under_test(settings: WsSettings, tokens: TokenFactory) -> ServerUnderTest:
    """Return the configured server, or start the user's app (``settings.app``) or the
    embedded reference server on a free loopback port.

    Raises:
        AsgiAppStartupError: the app failed to start (the message has its traceback).
        WsTimeoutError: the app or the server did not answer in time.
    """
    if settings.url is not None:
        return ServerUnderTest(url=settings.url, source=settings.url_source)
    if settings.app is not None:
        app = open_app_server(
            parse_app_path(settings.app),
            path=settings.path,
            in_subprocess=settings.app_subprocess,
            app_dirs=settings.app_dirs,
            timeout=max(settings.connect_timeout.value or 10.0, _APP_STARTUP_MIN_S),
        )
        return ServerUnderTest(url=app.url, source=settings.app_source, app=app)
    config = ServerConfig(
        secret=tokens.secret,
        public_key=tokens.public_key if tokens.algorithm == "RS256" else None,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        auth_query_param=settings.auth_query_param,
        auth_cookie=settings.auth_cookie,
        auth_subprotocol=settings.auth_subprotocol,
        max_message_size=settings.max_message_size,
        recv_timeout=settings.recv_timeout.value or 10.0,
    )
    embedded = EmbeddedServer(config).start(timeout=settings.connect_timeout.value or 10.0)
    return ServerUnderTest(url=embedded.url, source="embedded", embedded=embedded)
