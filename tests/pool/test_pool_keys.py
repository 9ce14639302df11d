"""The pool's reuse key (`pytest_ws_resilience.pool.keys`), as pure data: which acquires
may share a connection. No sockets."""

from __future__ import annotations

import hashlib

from pytest_ws_resilience.client.tokens import TestUser
from pytest_ws_resilience.pool.keys import pool_key

URL = "ws://127.0.0.1:1/"


def user(id: str = "u1", token: str = "t1") -> TestUser:
    return TestUser(id=id, email=f"{id}@example.test", token=token)


def test_pool_key_separates_every_part_of_the_identity() -> None:
    base = pool_key(user(), url=URL)
    assert pool_key(user(), url=URL) == base
    assert pool_key(user(), url=URL, options={"token": "t2"}) != base
    assert pool_key(user(id="u2"), url=URL) != base
    assert pool_key(user(), url="ws://127.0.0.1:2/") != base
    assert pool_key(user(), url=URL, auth="query") != base
    assert pool_key(user(), url=URL, auth="query") == pool_key(user(), url=URL, auth=["query"])
    headers_1 = {"additional_headers": {"A": "1", "B": "2"}}
    headers_2 = {"additional_headers": {"B": "2", "A": "1"}}
    assert pool_key(user(), url=URL, options=headers_1) == pool_key(
        user(), url=URL, options=headers_2
    )


def test_same_user_id_with_another_token_gets_another_key() -> None:
    assert pool_key(user(token="t1"), url=URL) != pool_key(user(token="t2"), url=URL)


def test_a_token_option_replaces_the_users_token_and_none_keeps_it() -> None:
    assert pool_key(user(token="t1"), url=URL, options={"token": "t2"}) == pool_key(
        user(token="t2"), url=URL
    )
    assert pool_key(user(), url=URL, options={"token": None}) == pool_key(user(), url=URL)


def test_option_values_compare_by_value_lists_in_order_sets_regardless() -> None:
    def key(value: object) -> object:
        return pool_key(user(), url=URL, options={"subprotocols": value})

    assert key(["a", "b"]) == key(["a", "b"])
    assert key(["a", "b"]) != key(["b", "a"])
    assert key(["a"]) != key(("a",))  # another type is another option value
    assert key({"a", "b"}) == key({"b", "a"})
    assert key({"x": [1, {"y": 2}]}) == key({"x": [1, {"y": 2}]})


def test_pool_key_matches_unhashable_unknown_values_by_identity_only() -> None:
    class Opaque:
        __hash__ = None  # type: ignore[assignment]

    value = Opaque()
    key = pool_key(user(), url=URL, options={"thing": value})
    assert key == pool_key(user(), url=URL, options={"thing": value})
    assert key != pool_key(user(), url=URL, options={"thing": Opaque()})


def test_the_key_keeps_a_digest_never_the_token() -> None:
    secret = "secret-token-value-123"
    key = pool_key(user(token=secret), url=URL)
    assert key.token_digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(key)
    assert secret not in repr(key.options)
