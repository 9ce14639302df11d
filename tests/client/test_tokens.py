"""TokenFactory and TestUser: real JWTs (pyjwt), valid and deliberately broken."""

import time

import jwt
import pytest

from pytest_ws_resilience import RsaKeyPair, TokenFactory
from pytest_ws_resilience.redaction import redact

pytestmark = pytest.mark.websocket_unit

# HMAC secrets of at least 32 bytes, as RFC 7518 asks.
SECRET = "s3cret-for-tests-0123456789abcdef0123456789"
SECRET_2 = "another-secret-0123456789abcdef0123456789"
RIGHT = "right-secret-0123456789abcdef0123456789"
PRIVATE = "a-very-private-secret-0123456789abcdef0123456789"
REGISTERED = "registered-secret-0123456789abcdef0123456789"
UNREGISTERED = "unregistered-key-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def rsa_pair() -> RsaKeyPair:
    return RsaKeyPair.generate()


def test_hs256_token_carries_standard_and_custom_claims():
    factory = TokenFactory(SECRET, audience="chat", issuer="tests")
    user = factory.user(role="admin")

    claims = jwt.decode(user.token, SECRET, algorithms=["HS256"], audience="chat")

    assert claims["sub"] == user.id
    assert claims["email"] == user.email
    assert claims["role"] == "admin"
    assert claims["iss"] == "tests"
    assert claims["exp"] > claims["iat"]
    assert claims["jti"]


def test_users_are_unique():
    factory = TokenFactory()
    users = [factory.user() for _ in range(50)]
    assert len({u.id for u in users}) == 50
    assert len({u.email for u in users}) == 50
    assert (
        len({jwt.decode(u.token, options={"verify_signature": False})["jti"] for u in users}) == 50
    )


def test_rs256_token_verifies_with_the_public_key(rsa_pair):
    factory = TokenFactory(private_key=rsa_pair.private_pem, public_key=rsa_pair.public_pem)
    user = factory.user()

    assert factory.algorithm == "RS256"
    assert factory.verification_key == rsa_pair.public_pem
    assert jwt.decode(user.token, rsa_pair.public_pem, algorithms=["RS256"])["sub"] == user.id


def test_expired_token_is_signed_correctly_but_expired():
    factory = TokenFactory(SECRET_2)
    token = factory.expired(factory.user())

    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, SECRET_2, algorithms=["HS256"])
    claims = jwt.decode(token, SECRET_2, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["exp"] < time.time()


@pytest.mark.parametrize("algorithm", ["HS256", "RS256"])
def test_wrong_key_token_fails_signature_check(algorithm, rsa_pair):
    if algorithm == "HS256":
        factory = TokenFactory(RIGHT)
        key = RIGHT
    else:
        factory = TokenFactory(private_key=rsa_pair.private_pem, public_key=rsa_pair.public_pem)
        key = rsa_pair.public_pem
    token = factory.wrong_key(factory.user())

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, key, algorithms=[algorithm])


def test_malformed_token_is_not_a_jwt():
    with pytest.raises(jwt.DecodeError):
        jwt.decode(TokenFactory().malformed(), options={"verify_signature": False})


def test_secret_and_private_key_are_exclusive(rsa_pair):
    with pytest.raises(ValueError, match="not both"):
        TokenFactory("x" * 10, private_key=rsa_pair.private_pem)


def test_tokens_and_keys_never_show_in_reprs(rsa_pair):
    factory = TokenFactory(PRIVATE)
    user = factory.user()

    for text in (repr(user), str(user), repr(factory), repr(rsa_pair)):
        assert user.token not in text
        assert PRIVATE not in text
        assert rsa_pair.private_pem not in text
    assert "<redacted" in repr(user)


def test_redact_hides_registered_secrets_and_any_jwt():
    factory = TokenFactory(REGISTERED)
    user = factory.user()
    foreign = jwt.encode({"sub": "x"}, UNREGISTERED, algorithm="HS256")

    text = f"Bearer {user.token} key={REGISTERED} other={foreign}"

    cleaned = redact(text)
    assert user.token not in cleaned
    assert REGISTERED not in cleaned
    assert foreign not in cleaned
    assert cleaned.count("<redacted>") == 3
