"""Every way a token can travel is accepted; every bad token is refused at the handshake."""

import pytest

from pytest_ws_resilience.errors import WsAuthError

AUTH_METHODS = ["subprotocol", "query", "header", "cookie"]


@pytest.mark.asyncio
@pytest.mark.websocket_security
@pytest.mark.parametrize("method", AUTH_METHODS)
async def test_each_auth_method_is_accepted(ws_client_factory, ws_user, method):
    client = await ws_client_factory(ws_user, auth=method)

    welcome = await client.expect(type="connection_established")

    assert client.metrics.auth_method == method
    assert welcome["user_id"] == ws_user.id


@pytest.mark.asyncio
@pytest.mark.websocket_security
@pytest.mark.parametrize("bad_token", ["expired", "wrong_key", "malformed"])
async def test_bad_tokens_are_rejected_by_every_method(
    ws_client_factory, ws_tokens, ws_user, bad_token
):
    token = (
        ws_tokens.malformed()
        if bad_token == "malformed"
        else getattr(ws_tokens, bad_token)(ws_user)
    )

    with pytest.raises(WsAuthError) as rejected:
        await ws_client_factory(ws_user, token=token, auth=AUTH_METHODS)

    # Each method was tried once and refused with 401; none was retried.
    assert [a.method for a in rejected.value.attempts] == AUTH_METHODS
    assert all(a.status == 401 for a in rejected.value.attempts)


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_connection_without_a_token_is_rejected(ws_client_factory, ws_user):
    with pytest.raises(WsAuthError):
        await ws_client_factory(ws_user, auth="none")
