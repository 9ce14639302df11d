"""Unit tests of the pure auth-method rules: how a token rides on each handshake."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from pytest_ws_resilience.client.auth_methods import (
    ConnectRequest,
    auth_chain,
    build_connect_request,
    normalize_auth,
)
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import DEFAULT_AUTH_CHAIN

URL = "ws://127.0.0.1:9000/chat"


@pytest.fixture
def token() -> str:
    return TokenFactory(secret="unit-test-secret-value-long-enough-for-hs256").user().token


def test_subprotocol_method_offers_protocol_name_then_token(token: str) -> None:
    request = build_connect_request("subprotocol", URL, token)
    assert request.subprotocols == ("jwt-auth", f"jwt.{token}")
    assert request.url == URL
    assert request.headers == ()
    assert request.method == "subprotocol"


def test_subprotocol_name_is_configurable(token: str) -> None:
    request = build_connect_request("subprotocol", URL, token, subprotocol="bearer-v2")
    assert request.subprotocols == ("bearer-v2", f"jwt.{token}")


def test_query_method_adds_token_param_and_keeps_others(token: str) -> None:
    request = build_connect_request("query", URL + "?room=7&flag=", token)
    params = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    assert params == [("room", "7"), ("flag", ""), ("token", token)]
    assert urlsplit(request.url).path == "/chat"
    assert request.headers == () and request.subprotocols == ()


def test_query_method_replaces_an_existing_token_param(token: str) -> None:
    request = build_connect_request("query", URL + "?token=stale&room=1", token)
    params = parse_qsl(urlsplit(request.url).query)
    assert params == [("room", "1"), ("token", token)]


def test_query_param_name_is_configurable(token: str) -> None:
    request = build_connect_request("query", URL, token, query_param="jwt")
    assert parse_qsl(urlsplit(request.url).query) == [("jwt", token)]


def test_header_method_sends_bearer_authorization(token: str) -> None:
    request = build_connect_request("header", URL, token)
    assert request.headers == (("Authorization", f"Bearer {token}"),)
    assert request.url == URL and request.subprotocols == ()


def test_cookie_method_sends_named_cookie(token: str) -> None:
    assert build_connect_request("cookie", URL, token).headers == (
        ("Cookie", f"access_token={token}"),
    )
    assert build_connect_request("cookie", URL, token, cookie="sid").headers == (
        ("Cookie", f"sid={token}"),
    )


def test_none_method_carries_no_credential(token: str) -> None:
    for given in (token, None):
        request = build_connect_request("none", URL, given)
        assert request == ConnectRequest(URL, (), (), "none")


def test_unknown_method_is_rejected_naming_the_valid_ones(token: str) -> None:
    with pytest.raises(ValueError, match="unknown auth method 'basic'") as info:
        build_connect_request("basic", URL, token)
    for method in ("subprotocol", "query", "header", "cookie", "none"):
        assert method in str(info.value)


def test_method_needing_a_token_without_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="needs a token"):
        build_connect_request("header", URL, None)


@pytest.mark.parametrize("method", ["subprotocol", "query", "header", "cookie"])
def test_repr_of_request_never_shows_the_token(method: str) -> None:
    # Not JWT-shaped and never registered: the repr must hide it by position alone.
    secret = "opaque-credential-0123456789"
    request = build_connect_request(method, URL + "?room=1", secret)
    assert secret not in repr(request)
    assert method in repr(request)


def test_normalize_auth_defaults_and_shapes() -> None:
    assert normalize_auth(None, DEFAULT_AUTH_CHAIN) == DEFAULT_AUTH_CHAIN
    assert normalize_auth("cookie", DEFAULT_AUTH_CHAIN) == ("cookie",)
    assert normalize_auth(["header", "query"], DEFAULT_AUTH_CHAIN) == ("header", "query")


def test_normalize_auth_drops_duplicates_keeping_order() -> None:
    assert normalize_auth(["query", "header", "query"], ()) == ("query", "header")


def test_normalize_auth_rejects_unknown_and_empty() -> None:
    with pytest.raises(ValueError, match=r"'bearer'.*valid: subprotocol"):
        normalize_auth(["header", "bearer"], DEFAULT_AUTH_CHAIN)
    with pytest.raises(ValueError, match="empty"):
        normalize_auth([], DEFAULT_AUTH_CHAIN)


def test_auth_chain_without_auth_or_token_is_none_alone() -> None:
    assert auth_chain(None, None, DEFAULT_AUTH_CHAIN) == ("none",)


def test_auth_chain_with_a_token_is_the_given_chain_else_the_default() -> None:
    assert auth_chain(None, "t" * 20, DEFAULT_AUTH_CHAIN) == DEFAULT_AUTH_CHAIN
    assert auth_chain(None, "t" * 20, ("header", "cookie")) == ("header", "cookie")
    assert auth_chain("query", "t" * 20, DEFAULT_AUTH_CHAIN) == ("query",)
    assert auth_chain("none", None, DEFAULT_AUTH_CHAIN) == ("none",)


def test_auth_chain_needing_a_token_without_one_names_the_methods() -> None:
    with pytest.raises(ValueError, match=r"auth method\(s\) header, cookie need a token"):
        auth_chain(["header", "none", "cookie"], None, DEFAULT_AUTH_CHAIN)
