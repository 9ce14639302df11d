"""Which pooled connection may serve which acquire: the reuse key.

Pure, no I/O. The pool's first rule is **never cross users**: a connection is reused
only for exactly the same URL, user id, token, auth chain and client options. Two
acquires get one key when, and only when, every part is equal; option values are
compared by value (mappings regardless of order, lists in order), and an unhashable
value of another kind matches only the very same object. The token is kept as a
SHA-256 digest, so a key shown in a debugger or a log leaks nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.redaction import redact

if TYPE_CHECKING:
    # Typing only: the tokens module imports pyjwt (and with it sockets); keys stay pure.
    from pytest_ws_resilience.client.tokens import TestUser

__all__ = ["PoolKey", "pool_key"]


class _Identity:
    """An unhashable option value compared by identity; holds a reference, so the id
    cannot be reused by another object while a key lives."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)


def _freeze(value: Any) -> Any:
    """A hashable stand-in for an option value: equal values give equal keys."""
    if isinstance(value, Mapping):
        return ("mapping", frozenset((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    if isinstance(value, (set, frozenset)):
        return ("set", frozenset(_freeze(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return _Identity(value)
    return value


def _digest(token: str | None) -> str | None:
    """The SHA-256 hex digest a key holds instead of ``token`` (None for no token)."""
    return None if token is None else hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class PoolKey:
    """What must be identical for a connection to be reused.

    Built by `pool_key`; the token is kept only as a SHA-256 digest.
    """

    url: str
    user_id: str
    token_digest: str | None = field(repr=False)
    auth: tuple[str, ...] | None
    options: Any = field(repr=False)

    def __repr__(self) -> str:
        return f"PoolKey(url={redact(self.url)!r}, user_id={self.user_id!r}, auth={self.auth!r})"


def pool_key(
    user: TestUser,
    *,
    url: str,
    auth: str | Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> PoolKey:
    """The reuse key of a connection for ``user`` at ``url`` with ``auth`` and ``options``.

    ``options`` are the `WsClient` keyword arguments; a ``token`` among them replaces
    ``user.token``. Unhashable option values that are not mappings, lists or sets
    match only themselves (the same object).
    """
    opts = dict(options or {})
    token = opts.pop("token", None)
    if token is None:
        token = user.token
    chain = None if auth is None else ((auth,) if isinstance(auth, str) else tuple(auth))
    return PoolKey(
        url=url,
        user_id=user.id,
        token_digest=_digest(token),
        auth=chain,
        options=frozenset((name, _freeze(value)) for name, value in opts.items()),
    )
