"""What a marker is (`isolation.markers`): a user's identity markers, and the token's
``sub`` read by a pure decode that answers as pyjwt's unverified decode did."""

from __future__ import annotations

import base64
import json
import random
import re

import jwt
import pytest

from pytest_ws_resilience.client.tokens import RsaKeyPair, TestUser, TokenFactory
from pytest_ws_resilience.isolation.markers import (
    EMAIL,
    SUBJECT,
    TOKEN,
    USER_ID,
    UserIdentity,
    identity_markers,
    token_subject,
)


def pyjwt_subject(token: str) -> str | None:
    """The answer of the former implementation: pyjwt, signature not verified."""
    if token.count(".") != 2:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return str(sub) if isinstance(sub, str | int) and not isinstance(sub, bool) else None


def segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def raw_segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def handmade(payload: object, header: object = None) -> str:
    return f"{segment(header or {'alg': 'HS256', 'typ': 'JWT'})}.{segment(payload)}.c2ln"


def token_corpus() -> list[str]:
    """Valid, expired, foreign and malformed tokens, odd claims and broken encodings."""
    hs256 = TokenFactory()
    alice = hs256.user(id="alice-0001")
    rsa = RsaKeyPair.generate()
    rs256 = TokenFactory(private_key=rsa.private_pem, public_key=rsa.public_pem)
    tokens = [
        alice.token,
        hs256.expired(alice),
        hs256.wrong_key(alice),
        hs256.malformed(),
        rs256.user(id="bob-0002").token,
        hs256.mint("carol-0003", role="admin"),
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "not a token at all",
        handmade({"sub": 12345678}),
        handmade({"sub": True}),
        handmade({"sub": None}),
        handmade({"sub": 1.5}),
        handmade({"sub": ["x"]}),
        handmade({"name": "no sub"}),
        handmade(["not", "an", "object"]),
        handmade({"sub": "dave"}, header=["not an object"]),
        handmade({"sub": "dave"}).replace(".c2ln", ".c2!n"),  # signature not base64url
        handmade({"sub": "dave"}).replace(".c2ln", ".c2k"),  # signature 4n+3: fine
        handmade({"sub": "dave"}).replace(".c2ln", ".c2l"),  # stray bits: not canonical
        handmade({"sub": "dave"}).replace(".c2ln", ".c"),  # signature 4n+1: not base64
        handmade({"sub": "padded"}) + "=",  # padding on a segment of the wrong length
        f"{segment({'alg': 'none'})}.{segment({'sub': 'erin'})}.",  # unsigned
        f"{segment({'alg': 'HS256'})}.{raw_segment(b'{bad json')}.c2ln",
        f"{segment({'alg': 'HS256'})}.{raw_segment(bytes([0xFF, 0xFE]))}.c2ln",  # not UTF-8
        f"{segment({'alg': 'HS256'})}.{raw_segment(b'{}')}.c2ln",
        f"{segment({'alg': 'HS256'})}.eyJzdWIiOiJmcmFuayJ9.c2ln",  # unpadded, 4n+3
        f"{segment({'alg': 'HS256'})}.eyJzdWIiOiJmcmFuayJ9===.c2ln",  # too much padding
    ]
    # Seeded damage: one character of a real token changed, anywhere.
    rng = random.Random(20250611)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.!+/ "
    for _ in range(300):
        text = list(rng.choice(tokens[:6]))
        text[rng.randrange(len(text))] = rng.choice(alphabet)
        tokens.append("".join(text))
    return tokens


#: The base64url alphabet, unpadded.
BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def canonical(token: str) -> bool:
    """Every segment is base64url as an encoder writes it: no padding, no stray bits
    (pyjwt before 2.14 also read the others; `token_subject` never does)."""
    for part in token.split("."):
        # Outside the alphabet is not canonical; checked first, as Python 3.15 warns
        # (FutureWarning) when urlsafe_b64decode meets '+' or '/'.
        if not BASE64URL.fullmatch(part):
            return False
        try:
            data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except ValueError:
            return False
        if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != part:
            return False
    return True


def test_token_subject_answers_as_pyjwt_unverified_decode_did() -> None:
    corpus = token_corpus()
    read = [t for t in corpus if canonical(t)]
    assert [token_subject(t) for t in read] == [pyjwt_subject(t) for t in read]
    # The rest are not base64url as written: no subject, whatever the pyjwt version.
    rest = [t for t in corpus if not canonical(t)]
    assert len(rest) >= 5 and [token_subject(t) for t in rest] == [None] * len(rest)
    # The corpus exercises both answers.
    answers = {token_subject(t) for t in corpus}
    assert {"alice-0001", "bob-0002", "carol-0003", "12345678", None} <= answers


def test_token_subject_reads_expired_and_foreign_tokens_without_a_key() -> None:
    tokens = TokenFactory()
    user = tokens.user(id="user-abc123")
    assert token_subject(tokens.expired(user)) == "user-abc123"
    assert token_subject(tokens.wrong_key(user)) == "user-abc123"
    assert token_subject(tokens.malformed()) is None


def test_identity_markers_are_id_email_sub_and_token() -> None:
    tokens = TokenFactory()
    user = tokens.user(id="user-abc123")
    assert identity_markers(user) == [
        ("user-abc123", USER_ID),
        (user.email, EMAIL),
        ("user-abc123", SUBJECT),
        (user.token, TOKEN),
    ]
    opaque = TestUser(id="user-opaque", email="o@example.test", token="opaque-token-1")
    assert identity_markers(opaque) == [
        ("user-opaque", USER_ID),
        ("o@example.test", EMAIL),
        ("opaque-token-1", TOKEN),
    ]
    tokenless = TestUser(id="user-none", email="n@example.test", token="")
    assert identity_markers(tokenless) == [("user-none", USER_ID), ("n@example.test", EMAIL)]


@pytest.mark.parametrize(
    ("value", "is_user"),
    [
        (TestUser(id="user-1", email="u@example.test", token="t"), True),
        ("user-1", False),
        (12345678, False),
    ],
)
def test_a_test_user_is_a_user_identity_and_an_id_is_not(value: object, is_user: bool) -> None:
    assert isinstance(value, UserIdentity) is is_user
