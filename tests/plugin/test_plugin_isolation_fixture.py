"""``ws_isolation`` as documented, run as users run it (pytester, ``-p ws_resilience``,
the embedded reference server): its attributes, its options on the fixture and as
``websocket_security`` arguments, one failure per leak, a summary that agrees with
pytest's counts, and no silent green."""

from __future__ import annotations

import pytest

#: A suite where Alice's agent run reaches Bob (the server's ``leak`` fault). ``{marker}``
#: decorates the test, ``{body}`` runs first in it, ``{after}`` at its fixture's teardown.
LEAKY_SUITE = """
import pytest
import pytest_asyncio

async def leak_once(ws_server, alice, bob, text):
    with ws_server.faults("leak"):
        await alice.send_json({{"type": "user_message", "text": text}})
        await alice.expect(type="agent_completed")
        await bob.send_json({{"type": "ping"}})
        await bob.expect(type="pong")  # every leaked frame reached Bob before this

@pytest_asyncio.fixture
async def pair(ws_server, ws_client_factory):
    alice, bob = await ws_client_factory(), await ws_client_factory()
    yield alice, bob
    {after}

@pytest.mark.asyncio
{marker}
async def test_pair(ws_server, ws_isolation, pair):
    alice, bob = pair
    {body}
"""

LEAK_IN_BODY = 'await leak_once(ws_server, alice, bob, "alice private note")'
LEAK_AFTER_BODY = 'await leak_once(ws_server, alice, bob, "alice second private note")'
CLEAN_BODY = 'await bob.send_json({"type": "ping"}); await bob.expect(type="pong")'


def run_suite(
    pytester: pytest.Pytester,
    *args: str,
    marker: str = "",
    body: str = CLEAN_BODY,
    after: str = "pass",
) -> pytest.RunResult:
    pytester.makepyfile(LEAKY_SUITE.format(marker=marker, body=body, after=after))
    return pytester.runpytest("-p", "ws_resilience", *args)


def summary_line(result: pytest.RunResult, prefix: str) -> str:
    lines = [line for line in result.outlines if line.startswith(prefix)]
    assert lines, f"no {prefix!r} line in the summary"
    return lines[-1]


# -- the documented object ---------------------------------------------------------------


def test_ws_isolation_exposes_violations_report_checks_and_detector(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest
        from pytest_ws_resilience import IsolationDetector

        @pytest.mark.asyncio
        async def test_attributes(ws_client_factory, ws_isolation):
            alice, bob = await ws_client_factory(), await ws_client_factory()
            await bob.send_json({"type": "ping"})
            await bob.expect(type="pong")
            assert ws_isolation.violations == []
            assert ws_isolation.checks >= 3  # two greetings and a pong
            assert isinstance(ws_isolation.detector, IsolationDetector)
            assert ws_isolation.report().startswith("no isolation violations")
            ws_isolation.assert_clean()
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)


def test_a_leak_shows_in_violations_and_report(ws_pytester):
    result = run_suite(
        ws_pytester,
        body=LEAK_IN_BODY
        + "\n    assert ws_isolation.violations"
        + "\n    assert 'isolation violation' in ws_isolation.report()"
        + "\n    ws_isolation.expect_violations()",
    )
    result.assert_outcomes(passed=1)


# -- options -----------------------------------------------------------------------------


def test_marker_taint_false_reports_identity_markers_only(ws_pytester):
    result = run_suite(
        ws_pytester, marker="@pytest.mark.websocket_security(taint=False)", body=LEAK_IN_BODY
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "id marker" in out or "email marker" in out
    assert "taint marker" not in out


def test_marker_options_can_switch_every_automatic_marker_off(ws_pytester):
    # identity and taint off, Alice's text allowlisted: nothing of hers is a marker, so
    # no violation; and nothing to look for at all, which a strict test may not pass on.
    result = run_suite(
        ws_pytester,
        marker='@pytest.mark.websocket_security(taint=False, identity=False, allow=["x"])',
        body=LEAK_IN_BODY + "\n    assert ws_isolation.violations == [] and ws_isolation.checks",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*nothing was checked*no user has a marker to look for*"])
    assert "isolation violation" not in result.stdout.str().lower()


def test_a_canary_still_fails_with_the_automatic_markers_off(ws_pytester):
    body = 'await leak_once(ws_server, alice, bob, "note " + alice.canary())'
    result = run_suite(
        ws_pytester,
        marker="@pytest.mark.websocket_security(taint=False, identity=False)",
        body=body,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*canary marker*"])


def test_configure_at_the_start_of_a_test_sets_the_same_options(ws_pytester):
    result = run_suite(
        ws_pytester,
        body="ws_isolation.configure(taint=False, identity=False, allow_patterns=[r'room-\\d+'])\n"
        "    " + LEAK_IN_BODY + "\n    assert ws_isolation.violations == []",
    )
    result.assert_outcomes(passed=1)


def test_configure_registers_extra_markers_per_user(ws_pytester):
    body = (
        "ws_isolation.configure(taint=False, identity=False, "
        "markers={alice.user: 'alice private'})\n    " + LEAK_IN_BODY
    )
    result = run_suite(ws_pytester, body=body)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*registered marker 'alice private'*"])


def test_configure_with_a_bad_value_is_one_line_naming_the_option(ws_pytester):
    result = run_suite(ws_pytester, body="ws_isolation.configure(taint='no')")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ValueError: ws_isolation.configure(): taint must be True or False, got 'no'"]
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("tanit=False", "*test_pair: websocket_security marker: unknown isolation option 'tanit'*"),
        ("taint='no'", "*test_pair: websocket_security marker: taint must be True or False*"),
        ("allow=[3]", "*websocket_security marker: allow must be a list of strings, got 3*"),
        ("allow_patterns=['(']", "*allow_patterns: '(' is not a valid regex*"),
        ("'strict'", "*websocket_security takes options by name only, got 'strict'*"),
    ],
)
def test_bad_marker_arguments_are_a_collection_error_naming_them(ws_pytester, arguments, message):
    result = run_suite(ws_pytester, marker=f"@pytest.mark.websocket_security({arguments})")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str()


# -- one failure per leak, and a summary that agrees ---------------------------------------


def test_a_leak_that_goes_on_after_the_body_fails_the_test_once(ws_pytester):
    result = run_suite(
        ws_pytester,
        marker="@pytest.mark.websocket_security",
        body=LEAK_IN_BODY,
        after=LEAK_AFTER_BODY,
    )
    result.assert_outcomes(failed=1, errors=0)
    assert "ERROR at teardown" not in result.stdout.str()
    assert "(failed 1)" in summary_line(result, "tests: 1")
    assert "violation" in summary_line(result, "isolation: ")
    assert "in 1 test" in summary_line(result, "isolation: ")


def test_a_leak_seen_only_after_the_body_fails_the_teardown_loudly(ws_pytester):
    result = run_suite(ws_pytester, marker="@pytest.mark.websocket_security", after=LEAK_AFTER_BODY)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_pair*", "*isolation violations after the test body*"]
    )
    # pytest counts the passed call and the failed teardown, and so does the summary.
    assert "(passed 1, error 1)" in summary_line(result, "tests: 1")


def test_the_summary_agrees_with_pytest_over_a_mixed_suite(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        async def leak(ws_server, alice, bob):
            with ws_server.faults("leak"):
                await alice.send_json({"type": "user_message", "text": "alice private note"})
                await alice.expect(type="agent_completed")
                await bob.send_json({"type": "ping"})
                await bob.expect(type="pong")

        @pytest.mark.asyncio
        @pytest.mark.websocket_security
        async def test_leaks(ws_server, ws_client_factory):
            await leak(ws_server, await ws_client_factory(), await ws_client_factory())

        @pytest.mark.asyncio
        @pytest.mark.websocket_security
        async def test_leaks_and_fails_itself(ws_server, ws_client_factory, ws_isolation):
            await leak(ws_server, await ws_client_factory(), await ws_client_factory())
            assert ws_isolation.violations == []

        @pytest.mark.asyncio
        @pytest.mark.websocket_security
        async def test_clean(ws_client_factory):
            bob = await ws_client_factory()
            await bob.send_json({"type": "ping"})
            await bob.expect(type="pong")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, failed=2, errors=0)
    assert "(passed 1, failed 2)" in summary_line(result, "tests: 3")
    assert "in 3 tests" in summary_line(result, "isolation: ")


# -- no silent green -----------------------------------------------------------------------


def test_a_security_test_that_checked_no_frame_fails(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.websocket_security
        def test_nothing_checked(ws_isolation):
            assert ws_isolation.strict
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*websocket_security: the isolation detector: nothing was checked: the test opened*"]
    )


def test_hand_made_clients_fail_a_security_test_and_are_named(ws_pytester):
    # Before issue 17: passed with a WsIsolationWarning.
    ws_pytester.makepyfile(
        """
        import pytest
        from pytest_ws_resilience import WsClient

        @pytest.mark.asyncio
        @pytest.mark.websocket_security
        async def test_raw(ws_server, ws_user, ws_settings):
            async with WsClient(ws_server.url, user=ws_user, settings=ws_settings) as client:
                await client.expect(type="connection_established")
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*nothing was checked*a WsClient made by hand is not watched*"])


def test_ws_isolation_alone_that_checked_no_frame_warns(ws_pytester):
    # Not strict (no websocket_security): the same finding is a warning.
    ws_pytester.makepyfile(
        """
        def test_nothing_checked(ws_isolation):
            assert not ws_isolation.strict
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*WsIsolationWarning: test_nothing_checked: the isolation detector: nothing was*"]
    )


def test_a_security_test_refused_at_the_handshake_does_not_warn(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest
        from pytest_ws_resilience import WsAuthError

        @pytest.mark.asyncio
        @pytest.mark.websocket_security
        async def test_refused(ws_client_factory, ws_tokens, ws_user):
            with pytest.raises(WsAuthError):
                await ws_client_factory(ws_user, token=ws_tokens.expired(ws_user))
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, warnings=0)


def test_the_no_frame_warning_can_fail_a_ci_run(ws_pytester):
    ws_pytester.makepyfile(
        """
        def test_nothing_checked(ws_isolation):
            pass
        """
    )
    result = ws_pytester.runpytest(
        "-p", "ws_resilience", "-W", "error::pytest_ws_resilience.errors.WsNothingCheckedWarning"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*nothing was checked*"])
