"""How a token rides on a WebSocket handshake: the four auth methods, as pure data.

`build_connect_request` turns (method, URL, token) into the URL, headers and
subprotocols to open a connection with; `auth_chain` says which methods a client tries.
It does no I/O, so every method is unit tested without a socket, and the client's
fallback chain is a loop over its output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pytest_ws_resilience.config.settings import AUTH_METHODS, WsSettings
from pytest_ws_resilience.redaction import REDACTED, redact

__all__ = [
    "ConnectRequest",
    "auth_chain",
    "build_connect_request",
    "describe_auth",
    "header_secrets",
    "is_secret_header",
    "normalize_auth",
]

# Headers whose value is a credential, whatever the token looks like.
_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
# Words that make a custom header's value a credential (``X-Api-Key``, ``X-Auth-Token``).
_SECRET_WORDS = ("auth", "token", "key", "secret", "session", "password")


def is_secret_header(name: str) -> bool:
    """True when a header's value is a credential: ``Authorization``, ``Cookie``, or a
    name with auth, token, key, secret, session or password in it."""
    lowered = name.lower()
    return lowered in _SECRET_HEADERS or any(word in lowered for word in _SECRET_WORDS)


def header_secrets(headers: Sequence[tuple[str, str]]) -> list[str]:
    """The credentials in ``headers``, to register for redaction: each secret header's
    value, the part after its scheme (``Bearer <this>``) and each cookie's value."""
    found: list[str] = []
    for name, value in headers:
        if not is_secret_header(name):
            continue
        found.append(value)
        scheme, _, rest = value.partition(" ")
        if rest and scheme.isalpha():
            found.append(rest.strip())
        if name.lower() == "cookie":
            found.extend(part.partition("=")[2].strip() for part in value.split(";"))
    return [v for v in found if v]


@dataclass(slots=True)
class ConnectRequest:
    """What to open one connection attempt with.

    ``url`` holds the token for the "query" method, so the repr hides it (and the
    credential headers and subprotocol) even when the token is not registered.

    Not frozen (read-only by convention): one is made for every connection, and a
    frozen dataclass pays a call of ``object.__setattr__`` for each field it sets.
    """

    url: str
    headers: tuple[tuple[str, str], ...]
    subprotocols: tuple[str, ...]
    method: str

    def __repr__(self) -> str:
        headers = tuple(
            (name, REDACTED if is_secret_header(name) else value) for name, value in self.headers
        )
        subprotocols = tuple(
            f"jwt.{REDACTED}" if proto.startswith("jwt.") else proto for proto in self.subprotocols
        )
        return (
            f"ConnectRequest(method={self.method!r}, url={_redact_url(self.url)!r}, "
            f"headers={headers!r}, subprotocols={subprotocols!r})"
        )


def _redact_url(url: str) -> str:
    """The URL with every query value that could be a credential hidden."""
    parts = urlsplit(url)
    if not parts.query:
        return redact(url)
    query = "&".join(f"{name}={REDACTED}" for name, _ in parse_qsl(parts.query, True))
    return redact(urlunsplit(parts._replace(query=query)))


def _with_query_param(url: str, name: str, value: str) -> str:
    """``url`` with query parameter ``name`` set to ``value``; other params kept in order."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    params.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(params)))


def build_connect_request(
    method: str,
    url: str,
    token: str | None,
    *,
    query_param: str = "token",
    cookie: str = "access_token",
    subprotocol: str = "jwt-auth",
) -> ConnectRequest:
    """Describe a handshake that presents ``token`` with auth ``method``.

    Args:
        method: "subprotocol", "query", "header", "cookie", or "none" (no credential).
        url: the ws:// or wss:// URL of the endpoint.
        token: the bearer token; may be None only for "none".
        query_param: query parameter name for "query".
        cookie: cookie name for "cookie".
        subprotocol: the protocol name offered with ``jwt.<token>`` for "subprotocol".

    Raises:
        ValueError: unknown method, or a method that needs a token without one.
    """
    if method not in AUTH_METHODS:
        raise ValueError(f"unknown auth method {method!r}; valid: {', '.join(AUTH_METHODS)}")
    if method == "none":
        return ConnectRequest(url=url, headers=(), subprotocols=(), method=method)
    if token is None:
        raise ValueError(f"auth method {method!r} needs a token; pass user= or token=")
    if method == "subprotocol":
        return ConnectRequest(url, (), (subprotocol, f"jwt.{token}"), method)
    if method == "query":
        return ConnectRequest(_with_query_param(url, query_param, token), (), (), method)
    if method == "header":
        return ConnectRequest(url, (("Authorization", f"Bearer {token}"),), (), method)
    return ConnectRequest(url, (("Cookie", f"{cookie}={token}"),), (), method)


def normalize_auth(auth: str | Sequence[str] | None, default: Sequence[str]) -> tuple[str, ...]:
    """The fallback chain to try: ``auth`` as a tuple, or ``default`` when None.

    Duplicates are dropped (trying a rejected method twice cannot help).

    Raises:
        ValueError: an unknown method name, or an empty chain.
    """
    if auth is None:
        methods: Sequence[str] = default
    elif isinstance(auth, str):
        methods = (auth,)
    else:
        methods = auth
    chain = tuple(methods)
    try:
        return _checked_chain(chain)  # only a valid chain is kept: an error is not cached
    except TypeError:  # a method that cannot be hashed (a list...): the error, uncached
        return _check_chain(chain)


def _check_chain(methods: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [m for m in methods if m not in AUTH_METHODS]
    if unknown:
        raise ValueError(
            f"unknown auth method(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(AUTH_METHODS)}"
        )
    chain = tuple(dict.fromkeys(methods))
    if not chain:
        raise ValueError(f"empty auth method chain; valid: {', '.join(AUTH_METHODS)}")
    return chain


#: Every client of a run walks one of a few chains: each is checked once (an error is
#: not cached, so a bad chain fails every time).
_checked_chain = cache(_check_chain)


def auth_chain(
    auth: str | Sequence[str] | None, token: str | None, default: Sequence[str]
) -> tuple[str, ...]:
    """The fallback chain a client walks: ``auth`` or ``default`` (`normalize_auth`);
    "none" alone when neither ``auth`` nor a token is given.

    Raises:
        ValueError: an unknown method, an empty chain, or a method that needs a token
            when there is none (checked here, before any connection is tried).
    """
    if auth is None and token is None:
        return ("none",)
    chain = normalize_auth(auth, default)
    if token is None and chain != ("none",):
        methods = ", ".join(m for m in chain if m != "none")
        raise ValueError(f"auth method(s) {methods} need a token; pass user= or token=")
    return chain


def describe_auth(settings: WsSettings) -> str:
    """The run's authentication in one phrase, for the header and the report:
    ``none (auth_methods = ["none"]: no token is presented)``, or the key and the chain
    (``HS256 secret from $JWT_SECRET; methods subprotocol, query, header, cookie``)."""
    if settings.unauthenticated:
        return 'none (auth_methods = ["none"]: no token is presented)'
    keys = settings.keys
    if keys.private_key is not None:
        key = f"RS256 key from ${keys.private_key_env}"
    elif keys.secret is not None:
        key = f"HS256 secret from ${keys.secret_env}"
    elif settings.server.kind in ("embedded", "command"):
        key = "HS256 with the run's own secret (given to the server the plugin starts)"
    else:
        key = (
            "no key configured (tokens are signed with the run's own secret, which this "
            'server does not know: set jwt_secret_env, or auth_methods = ["none"])'
        )
    return f"{key}; methods {', '.join(settings.effective_auth_methods)}"
