"""Which server a run talks to: a configured URL, or the embedded reference server.

Library code (no pytest): the `ws_server` fixture calls `open_server_under_test` once per
session and `ServerUnderTest.close` at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.settings import WsSettings
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig
from pytest_ws_resilience.tokens import TokenFactory

__all__ = ["ServerUnderTest", "open_server_under_test", "token_factory_for"]


@dataclass
class ServerUnderTest:
    """The server under test: ``url`` (a ``ws://`` string) and, if embedded, its handle.

    ``str(server) == server.url`` so it can be passed wherever a URL is expected.
    """

    url: str
    source: str
    embedded: EmbeddedServer | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        kind = "embedded reference server" if self.embedded else self.source
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
        """Stop the embedded server (bounded); nothing to do for an external URL."""
        if self.embedded is not None:
            self.embedded.stop(timeout=timeout)


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
    """Return the configured server, or start the embedded one on a free loopback port."""
    if settings.url is not None:
        return ServerUnderTest(url=settings.url, source=settings.url_source)
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
