"""Configuration of the reference server: one frozen, validated value.

Validation happens at construction so that a bad setting fails with one line before
any socket is opened, and the server code can trust every field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pytest_ws_resilience.config.settings import DEFAULT_AUTH_CHAIN, DEFAULT_MAX_MESSAGE_SIZE
from pytest_ws_resilience.loopback import is_loopback_host
from pytest_ws_resilience.redaction import register_secret, secret_repr
from pytest_ws_resilience.testing.faults import parse_faults

__all__ = ["SERVER_AUTH_METHODS", "ServerConfig", "is_loopback_host"]  # re-exported

#: The ways the server looks for a token, in its lookup order.
SERVER_AUTH_METHODS: tuple[str, ...] = DEFAULT_AUTH_CHAIN


def _is_rsa_public_pem(text: str) -> bool:
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        return False
    return isinstance(key, rsa.RSAPublicKey)


@dataclass(frozen=True)
class ServerConfig:
    """Settings of a `ReferenceServer`.

    The server only ever binds to loopback: it is a test fixture, and listening on a
    real interface would expose a server that accepts forged tokens under the
    ``accept_invalid_tokens`` fault.

    Args:
        host: loopback host to bind.
        port: TCP port; 0 picks a free one.
        secret: HS256 secret tokens are verified with.
        public_key: PEM public key for RS256 tokens (both may be set: the token's
            ``alg`` header picks the key).
        audience: required ``aud`` claim, if set.
        issuer: required ``iss`` claim, if set.
        require_auth: when False no token is needed; the user id comes from a
            ``?user=`` query parameter, else a token's (unverified) ``sub``, else
            a generated id.
        accepted_auth: where the server looks for a token; a token offered any
            other way counts as missing.
        auth_query_param: query parameter holding the token.
        auth_cookie: cookie holding the token.
        auth_subprotocol: subprotocol the server selects; the token rides along as
            a second offered subprotocol ``jwt.<token>``.
        agent_delay_s: pause between two events of an agent run.
        thinking_steps: number of ``agent_thinking`` events per run.
        max_message_size: incoming frames above this close the connection with 1009.
        ping_interval: seconds between the server's keepalive pings (None: off).
        ping_timeout: seconds to wait for a pong before closing (None: forever).
        recv_timeout: advertised to clients in ``connection_established``.
        slow_accept_s: handshake delay under the ``slow_accept`` fault.
        join_delay_s: how long a room join "loads the room" before it is answered
            (the window of the ``join_race`` fault; the clean server waits it too).
        faults: fault switches on at start (see `faults`).
        compression: negotiate permessage-deflate (as most production servers do).
    """

    host: str = "127.0.0.1"
    port: int = 0
    secret: str | None = field(default=None, repr=False)
    public_key: str | None = field(default=None, repr=False)
    audience: str | None = None
    issuer: str | None = None
    require_auth: bool = True
    accepted_auth: tuple[str, ...] = SERVER_AUTH_METHODS
    auth_query_param: str = "token"
    auth_cookie: str = "access_token"
    auth_subprotocol: str = "jwt-auth"
    agent_delay_s: float = 0.002
    thinking_steps: int = 2
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    recv_timeout: float = 10.0
    slow_accept_s: float = 2.0
    join_delay_s: float = 0.005
    faults: frozenset[str] = frozenset()
    compression: bool = True

    def __post_init__(self) -> None:
        # Normalise iterables given by callers (lists from argparse or TOML).
        object.__setattr__(self, "faults", parse_faults(self.faults))
        object.__setattr__(self, "accepted_auth", tuple(self.accepted_auth))
        register_secret(self.secret)
        register_secret(self.public_key)
        problem = self._problem()
        if problem:
            raise ValueError(f"invalid ServerConfig: {problem}")

    def _problem(self) -> str | None:
        """The first thing wrong with this config, as a phrase, or None."""
        if not is_loopback_host(self.host):
            return f"host {self.host!r} is not loopback (use 127.0.0.1, ::1 or localhost)"
        if not 0 <= self.port <= 65535:
            return f"port {self.port} is out of range 0-65535"
        unknown = [m for m in self.accepted_auth if m not in SERVER_AUTH_METHODS]
        if unknown:
            return (
                f"unknown auth method(s) {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(SERVER_AUTH_METHODS)}"
            )
        if self.require_auth and not (self.secret or self.public_key):
            return "require_auth=True needs a secret (HS256) or a public_key (RS256)"
        if self.public_key is not None and not _is_rsa_public_pem(self.public_key):
            return "public_key is not a PEM-encoded RSA public key"
        if self.require_auth and not self.accepted_auth:
            return "require_auth=True needs at least one accepted_auth method"
        for name in ("agent_delay_s", "slow_accept_s", "join_delay_s"):
            if getattr(self, name) < 0:
                return f"{name} must be >= 0, got {getattr(self, name)}"
        if self.thinking_steps < 1:
            return f"thinking_steps must be >= 1, got {self.thinking_steps}"
        if self.max_message_size < 1:
            return f"max_message_size must be >= 1, got {self.max_message_size}"
        if self.recv_timeout <= 0:
            return f"recv_timeout must be > 0, got {self.recv_timeout}"
        for name in ("ping_interval", "ping_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                return f"{name} must be > 0 or None, got {value}"
        for name in ("auth_query_param", "auth_cookie", "auth_subprotocol"):
            if not getattr(self, name):
                return f"{name} must not be empty"
        return None

    def __repr__(self) -> str:
        return (
            f"ServerConfig(host={self.host!r}, port={self.port}, "
            f"secret={secret_repr(self.secret)}, public_key={secret_repr(self.public_key)}, "
            f"require_auth={self.require_auth}, accepted_auth={self.accepted_auth!r}, "
            f"faults={sorted(self.faults)!r})"
        )

    @property
    def auth_mode(self) -> str:
        """A human summary of how tokens are checked (never the key itself)."""
        if not self.require_auth:
            return "none (auth not required)"
        algs = [alg for alg, key in (("HS256", self.secret), ("RS256", self.public_key)) if key]
        return f"{'+'.join(algs)} via {', '.join(self.accepted_auth)}"

    def with_changes(self, **changes: Any) -> ServerConfig:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)
