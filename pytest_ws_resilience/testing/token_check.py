"""Handshake authentication of the reference server, as pure functions.

Given a request's path and headers and the server config, decide who the user is or
why the handshake is refused. No sockets and no event loop here, so every rule (where
tokens are looked for, which key verifies which algorithm, what each failure says)
is testable on its own; `server.py` only turns the answer into an HTTP response.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from jwt.exceptions import InvalidSubjectError
from websockets.datastructures import Headers

from pytest_ws_resilience.redaction import secret_repr
from pytest_ws_resilience.testing.server_config import SERVER_AUTH_METHODS, ServerConfig

__all__ = [
    "SUBPROTOCOL_TOKEN_PREFIX",
    "TOKEN_EXPIRED_CLOSE_CODE",
    "TOKEN_EXPIRED_REASON",
    "AuthRejection",
    "FoundToken",
    "Identity",
    "authenticate",
    "extract_token",
    "offered_subprotocols",
    "seconds_left",
    "verify_token",
]

#: A token offered as a subprotocol is spelled ``jwt.<token>``.
SUBPROTOCOL_TOKEN_PREFIX = "jwt."

#: The close code of a connection whose token expired while it was open. A code of
#: the application's private range (RFC 6455, 7.4.2: 4000-4999), not 1008 (policy
#: violation): 1008 also ends connections for other policies (an Origin refused, a
#: message not allowed), and a client must tell "log in again and reconnect" from
#: "do not come back". 4001 mirrors HTTP 401, what the handshake answers the same token.
TOKEN_EXPIRED_CLOSE_CODE = 4001
#: Its close reason, as the handshake words the same refusal.
TOKEN_EXPIRED_REASON = "token expired"


@dataclass(frozen=True)
class FoundToken:
    """A token and the auth method it arrived by."""

    method: str
    token: str = field(repr=False)

    def __repr__(self) -> str:
        return f"FoundToken(method={self.method!r}, token={secret_repr(self.token)})"


@dataclass(frozen=True)
class Identity:
    """Who a connection belongs to.

    ``method`` is how the token came (None when auth is not required) and
    ``verified`` is False only when the ``accept_invalid_tokens`` fault let a bad
    token through, or auth is off.
    """

    user_id: str
    email: str | None = None
    method: str | None = None
    verified: bool = True
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class AuthRejection:
    """Why a handshake is refused: a short reason that never contains the token."""

    reason: str
    status: int = 401

    @property
    def body(self) -> str:
        """The plain-text HTTP body, e.g. ``401 Unauthorized: token expired``."""
        return f"{self.status} Unauthorized: {self.reason}\n"


def offered_subprotocols(headers: Headers) -> list[str]:
    """Every subprotocol the client offered, across repeated and comma-joined headers."""
    return [
        item.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for item in value.split(",")
        if item.strip()
    ]


def _from_subprotocol(headers: Headers) -> str | None:
    for item in offered_subprotocols(headers):
        if item.startswith(SUBPROTOCOL_TOKEN_PREFIX):
            return item[len(SUBPROTOCOL_TOKEN_PREFIX) :] or None
    return None


def _from_query(path: str, param: str) -> str | None:
    values = parse_qs(urlsplit(path).query).get(param)
    return values[0] if values and values[0] else None


def _from_header(headers: Headers) -> str | None:
    for value in headers.get_all("Authorization"):
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None


def _from_cookie(headers: Headers, name: str) -> str | None:
    for value in headers.get_all("Cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value)
        except CookieError:
            continue
        morsel = jar.get(name)
        if morsel is not None and morsel.value:
            return morsel.value
    return None


def extract_token(
    path: str,
    headers: Headers,
    *,
    methods: Iterable[str],
    query_param: str = "token",
    cookie: str = "access_token",
) -> FoundToken | None:
    """Find the client's token, looking only where ``methods`` allow, in that order.

    A token offered by a method outside ``methods`` is not seen at all: to the
    server it is missing, which is what lets a test prove a client's fallback chain.
    """
    for method in methods:
        if method == "subprotocol":
            token = _from_subprotocol(headers)
        elif method == "query":
            token = _from_query(path, query_param)
        elif method == "header":
            token = _from_header(headers)
        elif method == "cookie":
            token = _from_cookie(headers, cookie)
        else:
            continue
        if token:
            return FoundToken(method, token)
    return None


# pyjwt's exceptions mapped to the reasons a client sees (most specific first).
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.InvalidSignatureError, "invalid signature"),
    (jwt.InvalidAudienceError, "invalid audience"),
    (jwt.InvalidIssuerError, "invalid issuer"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim"),
    (InvalidSubjectError, "invalid subject"),
    (jwt.DecodeError, "malformed token"),
)


def verify_token(
    token: str,
    *,
    secret: str | None,
    public_key: str | None,
    audience: str | None = None,
    issuer: str | None = None,
) -> dict[str, Any] | AuthRejection:
    """Verify ``token`` and return its claims, or the reason it is refused.

    The token header's ``alg`` picks the key: HS256 uses ``secret``, RS256 uses
    ``public_key``. Only algorithms with a configured key are accepted, so neither
    ``alg: none`` nor an HS256 token forged with the public key gets through.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        return AuthRejection("malformed token")
    alg = header.get("alg")
    keys = {"HS256": secret, "RS256": public_key}
    key = keys.get(alg) if isinstance(alg, str) else None
    if key is None or not isinstance(alg, str):
        return AuthRejection(f"algorithm {alg!r} not accepted")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience,
            issuer=issuer,
            options={"require": ["sub"], "verify_aud": audience is not None},
        )
    except jwt.InvalidTokenError as exc:
        for kind, reason in _REASONS:
            if isinstance(exc, kind):
                return AuthRejection(reason)
        return AuthRejection("invalid token")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        return AuthRejection("invalid subject")
    return claims


def seconds_left(identity: Identity, now: float) -> float | None:
    """Seconds until the token ``identity`` was verified with expires, at wall time
    ``now`` (0 or less: expired already), or None when its lifetime is not enforced:
    no numeric ``exp``, or a token that was not verified (auth off, or let through by
    the ``accept_invalid_tokens`` fault, which must keep such connections open)."""
    if not identity.verified:
        return None
    exp = identity.claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return None
    # pyjwt, which verified it, compares whole seconds: int(exp) <= now is expired.
    return int(exp) - now


def _unverified_claims(token: str) -> dict[str, Any] | None:
    """The claims of a token without checking anything, or None if it does not decode."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    return claims if isinstance(claims, dict) else None


def _new_user_id() -> str:
    return f"anon-{uuid.uuid4().hex[:12]}"


def _identity(claims: Mapping[str, Any], method: str | None, verified: bool) -> Identity:
    email = claims.get("email")
    return Identity(
        user_id=str(claims["sub"]),
        email=email if isinstance(email, str) else None,
        method=method,
        verified=verified,
        claims=dict(claims),
    )


def authenticate(
    path: str,
    headers: Headers,
    config: ServerConfig,
    *,
    accept_invalid: bool = False,
    new_user_id: Callable[[], str] = _new_user_id,
) -> Identity | AuthRejection:
    """Decide who opens this connection, or why it is refused.

    Args:
        path: request target (path and query string).
        headers: request headers.
        config: where to look for tokens and how to verify them.
        accept_invalid: the ``accept_invalid_tokens`` fault: a present token is
            accepted even if expired, wrongly signed or malformed (a missing one
            is still refused).
        new_user_id: makes an id when the request names no user.
    """
    found = extract_token(
        path,
        headers,
        methods=config.accepted_auth if config.require_auth else SERVER_AUTH_METHODS,
        query_param=config.auth_query_param,
        cookie=config.auth_cookie,
    )
    if not config.require_auth:
        named = _from_query(path, "user")
        if named:
            return Identity(user_id=named, method=None, verified=False)
        claims = _unverified_claims(found.token) if found else None
        if claims and isinstance(claims.get("sub"), str) and claims["sub"]:
            return _identity(claims, found.method if found else None, verified=False)
        return Identity(user_id=new_user_id(), method=None, verified=False)

    if found is None:
        return AuthRejection("missing token")
    result = verify_token(
        found.token,
        secret=config.secret,
        public_key=config.public_key,
        audience=config.audience,
        issuer=config.issuer,
    )
    if isinstance(result, AuthRejection):
        if not accept_invalid:
            return result
        claims = _unverified_claims(found.token)
        if claims and isinstance(claims.get("sub"), str) and claims["sub"]:
            return _identity(claims, found.method, verified=False)
        return Identity(user_id=new_user_id(), method=found.method, verified=False)
    return _identity(result, found.method, verified=True)
