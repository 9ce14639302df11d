"""No secret in anything pytest writes: the warnings summary, JUnit properties, cut reprs,
URL passwords and the ``--debug`` trace file.

Each test runs a small suite with ``-p ws_resilience`` against the embedded server, with
real tokens from ``ws_user``; the suite writes the secrets it saw to a file, and every
output of the run is searched for them, whole and in pieces.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# The shortest piece of a payload or signature that must not show (`redaction`'s rule).
_PIECE = 8


def _windows(secret: str, size: int = _PIECE) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def _leaks(text: str, token: str) -> list[str]:
    """The pieces of ``token``'s payload or signature (8 characters or more) in ``text``.

    The header is not searched: it says only the algorithm and is no secret.
    """
    _, payload, signature = token.split(".")
    return sorted(w for w in _windows(payload) | _windows(signature) if w in text)


def _secrets_seen(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


def test_a_token_passed_to_warnings_warn_is_redacted_in_the_warnings_summary(ws_pytester, tmp_path):
    seen = tmp_path / "seen.txt"
    ws_pytester.makepyfile(
        f"""
        import pathlib
        import warnings

        def test_warns(ws_user):
            pathlib.Path({str(seen)!r}).write_text(ws_user.token)
            warnings.warn(f"the token is {{ws_user.token}}")
            warnings.warn(UserWarning("a bare one", ws_user.token))
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience", "-rA")
    result.assert_outcomes(passed=1, warnings=2)
    [token] = _secrets_seen(seen)
    out = result.stdout.str()
    assert _leaks(out, token) == []
    result.stdout.fnmatch_lines(["*warnings summary*", "*UserWarning: the token is <redacted>"])


def test_a_token_in_record_property_is_redacted_in_junit_xml(ws_pytester, tmp_path):
    seen = tmp_path / "seen.txt"
    ws_pytester.makepyfile(
        f"""
        import pathlib

        def test_records(ws_user, record_property):
            pathlib.Path({str(seen)!r}).write_text(ws_user.token)
            record_property("tok", ws_user.token)
            record_property("count", 3)
        """
    )
    junit = tmp_path / "junit.xml"
    result = ws_pytester.runpytest(
        "-p", "ws_resilience", f"--junitxml={junit}", "-o", "junit_family=xunit1"
    )
    result.assert_outcomes(passed=1)
    [token] = _secrets_seen(seen)
    xml = junit.read_text()
    assert _leaks(xml, token) == []
    assert '<property name="tok" value="&lt;redacted&gt;"' in xml
    assert '<property name="count" value="3"' in xml  # a property without a secret stays


def test_cut_reprs_show_no_piece_of_a_token(ws_pytester, tmp_path, monkeypatch):
    """saferepr keeps a head and a tail of a long value, the diff skips the identical
    prefix, the short summary cuts at the terminal's width: none shows a piece."""
    monkeypatch.setenv("COLUMNS", "150")  # a summary line long enough to hold a token
    seen = tmp_path / "seen.txt"
    ws_pytester.makepyfile(
        f"""
        import pathlib

        def test_long_values(ws_user):
            token = ws_user.token
            pathlib.Path({str(seen)!r}).write_text(token)
            padded = {{"token": token, "pad": "z" * 400}}
            assert token == "nope" * 80, token

        def test_two_tokens(ws_user_factory):
            first, second = ws_user_factory(), ws_user_factory()
            with open({str(seen)!r}, "a") as out:
                out.write("\\n" + first.token + "\\n" + second.token)
            assert first.token == second.token
        """
    )
    junit = tmp_path / "junit.xml"
    result = ws_pytester.runpytest(
        "-p", "ws_resilience", "-rA", "-l", "--tb=long", f"--junitxml={junit}"
    )
    result.assert_outcomes(failed=2)
    tokens = _secrets_seen(seen)
    assert len(tokens) == 3
    outputs = {"stdout": result.stdout.str(), "junit": junit.read_text()}
    for name, text in outputs.items():
        for token in tokens:
            assert _leaks(text, token) == [], f"a piece of a token in {name}"
    # The failures still say what failed, with the short summary's crash message.
    result.stdout.fnmatch_lines(
        [
            "*token      = '<redacted>...<redacted>*",
            "FAILED *test_long_values - AssertionError: <redacted>*",
            "FAILED *test_two_tokens - AssertionError: assert '<redacted>*",
        ]
    )


def test_a_url_password_shows_nowhere(ws_pytester, tmp_path):
    password = "Sup3rS3cretPassw0rd"
    url = f"ws://alice:{password}@127.0.0.1:9/ws"
    ws_pytester.makepyfile(
        """
        import pytest

        def test_shows_the_url(ws_settings):
            assert ws_settings.server.url == "something else", ws_settings.server.url

        @pytest.mark.asyncio
        async def test_connects(ws_client_factory):
            await ws_client_factory(connect_retries=0)
        """
    )
    junit = tmp_path / "junit.xml"
    report = tmp_path / "report.json"
    result = ws_pytester.runpytest(
        "-p", "ws_resilience", "-rA", "-l", f"--ws-url={url}",
        f"--junitxml={junit}", f"--ws-report={report}",
    )  # fmt: skip
    result.assert_outcomes(failed=2)
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "junit": junit.read_text(),
        "report": report.read_text(),
    }
    for name, text in outputs.items():
        assert password not in text, f"the URL password in {name}"
    result.stdout.fnmatch_lines(["ws-resilience: env=*url=ws://alice:<redacted>@127.0.0.1:9/ws*"])
    assert "ws://alice:<redacted>@127.0.0.1:9/ws" in json.loads(report.read_text())["run"]["url"]


@pytest.mark.parametrize("how", ["--debug", "PYTEST_DEBUG"])
def test_the_debug_trace_holds_no_secret(ws_pytester, tmp_path, monkeypatch, how):
    seen = tmp_path / "seen.txt"
    ws_pytester.makepyfile(
        f"""
        import pathlib

        def test_uses_a_token(ws_user, ws_tokens):
            pathlib.Path({str(seen)!r}).write_text(ws_user.token + "\\n" + ws_tokens.secret)
            assert ws_user.token == "x" * 300
        """
    )
    url = "ws://alice:Sup3rS3cretPassw0rd@127.0.0.1:9/ws"
    if how == "PYTEST_DEBUG":
        monkeypatch.setenv("PYTEST_DEBUG", "1")
        result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", f"--basetemp={tmp_path}/b")
        trace = result.stderr.str()
    else:
        log = tmp_path / "trace.log"
        # The URL only reaches the file's header (the command line): no test uses it.
        result = ws_pytester.runpytest(
            "-p", "ws_resilience", f"--debug={log}", "-o", f"ws_url_unused={url}"
        )
        trace = log.read_text()
        assert "Sup3rS3cretPassw0rd" not in trace
        assert "alice:<redacted>@" in trace
    result.assert_outcomes(failed=1)
    token, run_secret = _secrets_seen(seen)
    assert "pytest_runtest_logreport" in trace  # the trace was written, and read here
    assert run_secret not in trace
    assert _leaks(trace, token) == []
