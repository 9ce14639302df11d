"""JWT minting for test users: valid tokens, and broken ones for negative tests.

Every token minted here is registered with `redaction`, so it never shows in a repr,
a log line, an error or a pytest report.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pytest_ws_resilience.config.bounds import check_seconds
from pytest_ws_resilience.redaction import register_secret, register_token, secret_repr

__all__ = ["RsaKeyPair", "TestUser", "TokenFactory", "check_ttl", "ttl_claims"]


@dataclass(frozen=True)
class RsaKeyPair:
    """PEM-encoded RSA keys for RS256 (the private one is redacted in reprs)."""

    private_pem: str = field(repr=False)
    public_pem: str

    @classmethod
    def generate(cls, bits: int = 2048) -> RsaKeyPair:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        register_secret(private_pem)
        return cls(private_pem=private_pem, public_pem=public_pem)


@dataclass(frozen=True)
class TestUser:
    """A user of the service under test: unique id, email and a valid token.

    The token is never shown: ``repr(user)`` and ``str(user)`` print a redacted form.
    """

    __test__ = False  # not a pytest test class, despite the name

    id: str
    email: str
    token: str = field(repr=False)
    claims: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Wall time (epoch seconds) the token's ``exp`` names: when a server that checks
    #: lifetimes stops accepting it, and may close a connection opened with it.
    expires_at: float | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"TestUser(id={self.id!r}, email={self.email!r}, token={secret_repr(self.token)})"

    __str__ = __repr__


#: The longest token lifetime: ten years (a token that must outlive the tests).
_MAX_LIFETIME_S = 10 * 365 * 86_400.0
#: Keywords of `TokenFactory.user` that are not claims, and what to do instead.
_NOT_CLAIMS = {
    "sub": "the subject is the user's id: pass id=...",
    "key": "a token signed with another key is tokens.wrong_key(user)",
    "issued_at": "an expired token is tokens.expired(user); else tokens.mint(..., issued_at=)",
    "lifetime_s": "a short-lived token is ttl=<seconds>; else TokenFactory(lifetime_s=...)",
}


def check_ttl(ttl: Any) -> float:
    """A token lifetime given as ``ttl=``: a positive, finite number of seconds.

    Raises:
        ValueError: one line naming ``ttl`` and what it must be.
    """
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        if math.isfinite(ttl) and 0 < ttl <= _MAX_LIFETIME_S:
            return float(ttl)
    raise ValueError(
        f"ttl={ttl!r} is invalid: the token lifetime must be a positive number of seconds "
        f"(at most {_MAX_LIFETIME_S:.0f})"
    )


def ttl_claims(now: float, ttl: float) -> tuple[int, int]:
    """``iat`` and ``exp`` of a token minted at ``now`` that lives ``ttl`` seconds.

    JWT times are whole seconds to most verifiers (pyjwt compares ``int(exp)``), so
    ``exp = iat + ttl`` with ``iat = int(now)`` would live anywhere from ``ttl - 1`` to
    ``ttl`` seconds: a ``ttl=1`` token minted late in a second would be refused at the
    handshake. ``exp`` is rounded up instead: the token is valid for at least ``ttl``
    seconds after minting and expires less than one second later than that.
    """
    return int(now), math.ceil(now + ttl)


def _check_user_arguments(id: Any, email: Any, claims: dict[str, Any]) -> None:
    for name, value in (("id", id), ("email", email)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"user {name}= must be a non-empty string, got {value!r}")
    for name in claims:
        if name in _NOT_CLAIMS:
            raise ValueError(f"user({name}=...) is not a claim you can set: {_NOT_CLAIMS[name]}")


class TokenFactory:
    """Mints JWTs with pyjwt, HS256 (shared secret) or RS256 (key pair).

    Args:
        secret: HS256 secret. Generated at random when neither a secret nor a
            private key is given (useful against the embedded server, which is
            configured with the same secret).
        private_key: PEM private key; switches the algorithm to RS256.
        public_key: PEM public key matching ``private_key`` (what a server verifies with).
        audience: ``aud`` claim added to every token, if set.
        issuer: ``iss`` claim added to every token, if set.
        lifetime_s: seconds from ``iat`` to ``exp``.
    """

    def __init__(
        self,
        secret: str | None = None,
        *,
        private_key: str | None = None,
        public_key: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        lifetime_s: float = 3600.0,
    ) -> None:
        if secret is not None and private_key is not None:
            raise ValueError(
                "TokenFactory takes a secret (HS256) or a private key (RS256), not both"
            )
        if private_key is None and secret is None:
            secret = secrets.token_urlsafe(32)
        self.algorithm = "RS256" if private_key is not None else "HS256"
        self._secret = secret
        self._private_key = private_key
        self.public_key = public_key
        self.audience = audience
        self.issuer = issuer
        # Finite: int(now + nan) at the first mint is no place to learn of a typo.
        self.lifetime_s = check_seconds(
            "TokenFactory lifetime_s", lifetime_s, minimum=1.0, maximum=_MAX_LIFETIME_S
        )
        register_secret(secret)
        register_secret(private_key)

    def __repr__(self) -> str:
        return (
            f"TokenFactory(algorithm={self.algorithm!r}, audience={self.audience!r}, "
            f"issuer={self.issuer!r}, key={secret_repr(self._secret or self._private_key)})"
        )

    @property
    def secret(self) -> str | None:
        """The HS256 secret (for configuring a server); None under RS256."""
        return self._secret

    @property
    def verification_key(self) -> str:
        """What a server needs to verify these tokens: the secret or the public key."""
        if self.algorithm == "HS256":
            assert self._secret is not None
            return self._secret
        if self.public_key is None:
            raise ValueError("RS256 TokenFactory has no public_key to verify with")
        return self.public_key

    # -- minting -------------------------------------------------------------------

    def mint(
        self,
        sub: str,
        *,
        lifetime_s: float | None = None,
        issued_at: float | None = None,
        key: str | None = None,
        ttl: float | None = None,
        **claims: Any,
    ) -> str:
        """Return a signed token for subject ``sub`` with ``iat``, ``exp``, ``jti``.

        ``ttl`` (seconds) makes a short-lived token, valid for at least ``ttl`` seconds
        from now (`ttl_claims`); it beats ``lifetime_s``.
        """
        payload = self._payload(sub, lifetime_s, issued_at, ttl, claims)
        return self._sign(payload, key)

    def _payload(
        self,
        sub: str,
        lifetime_s: float | None,
        issued_at: float | None,
        ttl: float | None,
        claims: dict[str, Any],
    ) -> dict[str, Any]:
        now = time.time() if issued_at is None else issued_at
        if ttl is not None:
            iat, exp = ttl_claims(now, check_ttl(ttl))
        else:
            lifetime = self.lifetime_s if lifetime_s is None else lifetime_s
            iat, exp = int(now), int(now + lifetime)
        # 128 random bits, as a uuid4 has, without building a UUID for every token.
        payload: dict[str, Any] = {"sub": sub, "iat": iat, "exp": exp, "jti": os.urandom(16).hex()}
        if self.audience is not None:
            payload["aud"] = self.audience
        if self.issuer is not None:
            payload["iss"] = self.issuer
        payload.update(claims)
        return payload

    def _sign(self, payload: dict[str, Any], key: str | None = None) -> str:
        signing_key = key or self._secret or self._private_key
        assert signing_key is not None
        token = jwt.encode(payload, signing_key, algorithm=self.algorithm)
        register_token(token)
        return token

    def user(
        self,
        *,
        id: str | None = None,
        email: str | None = None,
        ttl: float | None = None,
        **claims: Any,
    ) -> TestUser:
        """A fresh `TestUser` with a unique id and email and a valid token.

        Args:
            id: the user's id, which is the token's ``sub`` (default: a unique one).
            email: default ``<id>@example.test``.
            ttl: the token's lifetime in seconds, for a short-lived token (default: the
                factory's ``lifetime_s``). It is valid for at least ``ttl`` seconds and
                expires less than a second after that (`ttl_claims`);
                ``user.expires_at`` says when.
            **claims: more claims of the token (``role="admin"``...).

        Raises:
            ValueError: an ``id`` or ``email`` that is not a non-empty string, a ``ttl``
                that is not a positive number, or a claim the factory sets from an
                argument (``sub``: use ``id=``) or that would be taken as an argument of
                `mint` (``key``, ``issued_at``, ``lifetime_s``).
        """
        _check_user_arguments(id, email, claims)
        user_id = id or f"user-{os.urandom(6).hex()}"
        user_email = email or f"{user_id}@example.test"
        all_claims = {"email": user_email, **claims}
        payload = self._payload(user_id, None, None, ttl, all_claims)
        exp = payload["exp"]
        return TestUser(
            id=user_id,
            email=user_email,
            token=self._sign(payload),
            claims=all_claims,
            expires_at=float(exp) if isinstance(exp, (int, float)) else None,
        )

    # -- broken tokens for negative tests -------------------------------------------

    def expired(self, user: TestUser) -> str:
        """A correctly signed token for ``user`` that expired an hour ago."""
        return self.mint(user.id, issued_at=time.time() - 7200, lifetime_s=3600, **user.claims)

    def wrong_key(self, user: TestUser) -> str:
        """A token for ``user`` signed with a key the server does not know."""
        if self.algorithm == "HS256":
            other = secrets.token_urlsafe(32)
            register_secret(other)
            return self.mint(user.id, key=other, **user.claims)
        other_pair = RsaKeyPair.generate()
        return self.mint(user.id, key=other_pair.private_pem, **user.claims)

    def malformed(self) -> str:
        """A string that looks like a bearer token but is not a JWT at all."""
        return "not-a-jwt." + secrets.token_urlsafe(16)
