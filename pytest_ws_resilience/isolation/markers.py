"""What a marker is: its kinds, a user's identity markers, and which sent values are taint.

Pure, no I/O. A *marker* is a string that belongs to one user, so finding it in a frame
another user received is a leak. The kinds are shown in violations and decide what a
report may print (a token or a secret never is). A user's identity markers come from
the user object alone: the token's ``sub`` is read by decoding the token's payload, not
by verifying it, since only the name is wanted and verifying would need the key (and
pyjwt, whose import loads urllib and socket).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, NamedTuple, Protocol, runtime_checkable

from pytest_ws_resilience.peer_json import decode_or

__all__ = [
    "CANARY",
    "DEFAULT_UNTAINTED_KEYS",
    "EMAIL",
    "IDENTITY_KINDS",
    "REGISTERED",
    "SECRET_KINDS",
    "SUBJECT",
    "TAINT",
    "TOKEN",
    "USER_ID",
    "SkippedMarker",
    "UserIdentity",
    "identity_markers",
    "token_subject",
]

#: Keys whose values name the message, not the user's data: never tainted.
DEFAULT_UNTAINTED_KEYS: frozenset[str] = frozenset(
    {"type", "event", "action", "op", "kind", "method", "command", "cmd", "channel", "topic"}
)

# Marker kinds, as shown in violations.
USER_ID = "id"
EMAIL = "email"
SUBJECT = "sub"
TOKEN = "token"
TAINT = "taint"
CANARY = "canary"
REGISTERED = "registered"
#: Identity kinds, switched by ``identity=``.
IDENTITY_KINDS: frozenset[str] = frozenset({USER_ID, EMAIL, SUBJECT, TOKEN})
#: Kinds whose marker is never shown, only its length.
SECRET_KINDS: frozenset[str] = frozenset({TOKEN, "secret"})

# One segment of a JWT's compact form: base64url without padding (a few issuers pad).
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*={0,2}")


class SkippedMarker(NamedTuple):
    """A marker too short to be used (it would match everywhere), kept to explain why."""

    owner: str
    kind: str
    marker: str


@runtime_checkable
class UserIdentity(Protocol):
    """What the detector reads of a user (a `TestUser` is one): id, email and token.

    Structural, so this pure package does not import the client's token module (and
    pyjwt with it) to recognise a user.
    """

    @property
    def id(self) -> str: ...

    @property
    def email(self) -> str: ...

    @property
    def token(self) -> str: ...


def _segment_bytes(segment: str) -> bytes | None:
    """A base64url segment decoded; None when it is not one: characters outside the
    alphabet, wrong padding, or a non-canonical encoding (stray bits in the last
    character), as a JWS library refuses them."""
    if not _SEGMENT.fullmatch(segment):
        return None
    stripped = segment.rstrip("=")
    if (len(stripped) != len(segment) and len(segment) % 4) or len(stripped) % 4 == 1:
        return None
    try:
        decoded = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except binascii.Error:
        return None
    if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode() != stripped:
        return None
    return decoded


def _segment_object(segment: str) -> dict[str, Any] | None:
    """A base64url segment decoded as a JSON object; None when it is not one."""
    decoded = _segment_bytes(segment)
    if decoded is None:
        return None
    value = decode_or(decoded, None)
    return value if isinstance(value, dict) else None


def token_subject(token: str) -> str | None:
    """The ``sub`` of a JWT, read without verification (we only need the name).

    Returns:
        The ``sub`` claim (a string, or an integer as digits); None for anything that
        is not a compact JWT (three base64url segments, header and payload JSON objects)
        or has no such claim.
    """
    if token.count(".") != 2:
        return None
    header, payload, signature = token.split(".")
    if _segment_bytes(signature) is None or _segment_object(header) is None:
        return None
    claims = _segment_object(payload)
    sub = None if claims is None else claims.get("sub")
    return str(sub) if isinstance(sub, str | int) and not isinstance(sub, bool) else None


def identity_markers(user: UserIdentity) -> list[tuple[str, str]]:
    """A user's identity markers, as (marker, kind): id, email, and with a token its
    ``sub`` (when it reads as one) and the token itself."""
    markers = [(user.id, USER_ID), (user.email, EMAIL)]
    if user.token:
        sub = token_subject(user.token)
        if sub is not None:
            markers.append((sub, SUBJECT))
        markers.append((user.token, TOKEN))
    return markers
