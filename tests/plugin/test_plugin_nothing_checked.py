"""No silent green, as users meet it (pytester, ``-p ws_resilience``, the embedded
reference server): a security test whose users have no usable marker fails, one whose
every connection was refused stays green, and ``expect()`` without criteria is refused."""

from __future__ import annotations

SHORT_IDS = """
import pytest

@pytest.mark.asyncio
@pytest.mark.websocket_security
async def test_short_ids(ws_client_factory, ws_user_factory):
    alice = await ws_client_factory(ws_user_factory(id="u1", email="a@b.c"))
    bob = await ws_client_factory(ws_user_factory(id="u2", email="d@e.f"))
    for client in (alice, bob):
        await client.send_json({"type": "ping"})
        await client.expect(type="pong")
"""


def test_a_security_test_whose_users_have_no_usable_marker_fails(ws_pytester):
    # Before issue 17: passed, frames scanned for markers that could never match.
    ws_pytester.makepyfile(SHORT_IDS)
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*nothing was checked*frame(s) scanned, but no user has a marker to look for*"]
    )


def test_the_same_test_with_usable_ids_passes(ws_pytester):
    ws_pytester.makepyfile(
        SHORT_IDS.replace('id="u1", email="a@b.c"', "").replace('id="u2", email="d@e.f"', "")
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


def test_an_auth_rejection_test_whose_connections_were_all_refused_stays_green(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest
        from pytest_ws_resilience import WsAuthError

        @pytest.mark.asyncio
        @pytest.mark.websocket_security
        async def test_refused(ws_client_factory, ws_tokens, ws_user):
            with pytest.raises(WsAuthError):
                await ws_client_factory(ws_user, token=ws_tokens.wrong_key(ws_user))
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience", "-W", "error").assert_outcomes(passed=1)


def test_expect_without_criteria_is_a_one_line_error(ws_pytester):
    # Before issue 17: returned the greeting (whatever came first).
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_expect(ws_client):
            with pytest.raises(ValueError) as info:
                await ws_client.expect()
            assert str(info.value) == (
                "expect() needs a type, fields or a predicate; to take the next frame "
                "whatever it is, use expect(lambda frame: True)"
            )
            with pytest.raises(ValueError, match="an expect_sequence"):
                await ws_client.expect_sequence(["connection_established", {}])
            first = await ws_client.expect(lambda frame: True)
            assert first["type"] == "connection_established"
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)
