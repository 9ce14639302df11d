"""Token lifetime: a connection must not outlive its token.

The reference server checks a token for as long as the connection lives and closes it
with 4001 "token expired" when the token's exp passes; its keep_expired_sessions fault
is the classic bug of checking at the handshake only. The close codes of every
connection are counted in the terminal summary ("close codes: ...") and the report.
"""

import pytest

from pytest_ws_resilience.errors import WsTimeoutError

TOKEN_EXPIRED = 4001


@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_a_connection_is_closed_when_its_token_expires(ws_client_factory, ws_user_factory):
    user = ws_user_factory(ttl=1)  # valid for at least 1 s, expired within 2 s
    client = await ws_client_factory(user)
    await client.send_json({"type": "ping"})
    await client.expect(type="pong")  # accepted, and working

    assert await client.expect_close(code=TOKEN_EXPIRED, within=4) == TOKEN_EXPIRED
    assert client.closed


@pytest.mark.asyncio
@pytest.mark.websocket_resilience
async def test_a_session_that_outlives_its_token_is_caught(
    ws_server, ws_client_factory, ws_user_factory
):
    # The faulty server checks the token at the handshake only: the socket stays open.
    with ws_server.faults("keep_expired_sessions"):
        client = await ws_client_factory(ws_user_factory(ttl=1))
        with pytest.raises(WsTimeoutError) as caught:
            await client.expect_close(code=TOKEN_EXPIRED, within=4)

    print(caught.value)  # "... still open after 4.0 s (explicit); expected close 4001; ..."
    assert "expected close 4001" in str(caught.value)
    assert client.connected
