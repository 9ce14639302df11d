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


# -- short-lived tokens: ttl= -------------------------------------------------------------


@pytest.mark.parametrize("now", [1_000_000.0, 1_000_000.01, 1_000_000.5, 1_000_000.99])
@pytest.mark.parametrize("ttl", [1, 2.5, 0.2, 3600])
def test_a_ttl_token_lives_at_least_ttl_and_less_than_a_second_more(now, ttl):
    factory = TokenFactory(SECRET)
    token = factory.mint("u1", issued_at=now, ttl=ttl)

    claims = jwt.decode(token, options={"verify_signature": False})

    # Whole seconds, as verifiers compare them (pyjwt: int(exp) <= now is expired).
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)
    assert claims["iat"] <= now
    assert now + ttl <= claims["exp"] < now + ttl + 1


def test_user_with_ttl_is_accepted_now_and_knows_when_it_expires():
    factory = TokenFactory(SECRET)
    before = time.time()
    user = factory.user(ttl=1)

    claims = jwt.decode(user.token, SECRET, algorithms=["HS256"])  # not expired yet

    assert user.expires_at == claims["exp"]
    assert before + 1 <= user.expires_at < time.time() + 2
    assert "ttl" not in claims
    assert user.token not in repr(user)


def test_without_ttl_the_factory_lifetime_applies():
    user = TokenFactory(SECRET, lifetime_s=600).user()
    claims = jwt.decode(user.token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 600
    assert user.expires_at == claims["exp"]


def test_a_ttl_token_expires():
    factory = TokenFactory(SECRET)
    token = factory.mint("u1", issued_at=time.time() - 10, ttl=2)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, SECRET, algorithms=["HS256"])


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "5", True, 10**12])
def test_a_bad_ttl_is_one_line_naming_it(ttl):
    with pytest.raises(ValueError, match=r"^ttl=.* is invalid: the token lifetime must be") as bad:
        TokenFactory(SECRET).user(ttl=ttl)
    assert "\n" not in str(bad.value)
