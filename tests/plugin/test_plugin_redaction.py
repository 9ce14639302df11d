"""A token never appears in any test output: failures, captured output, logs, junitxml."""


def test_token_never_appears_in_output(ws_pytester, tmp_path):
    token_file = tmp_path / "token.txt"
    ws_pytester.makepyfile(
        f"""
        import logging
        import pytest

        log = logging.getLogger("user.code")

        @pytest.mark.asyncio
        async def test_leaky(ws_client_factory, ws_user, ws_tokens):
            with open({str(token_file)!r}, "w") as fh:
                fh.write(ws_user.token + "\\n" + ws_tokens.secret)
            client = await ws_client_factory(ws_user, auth="query")
            print("stdout:", ws_user.token, repr(client), ws_tokens.secret)
            log.warning("token in a log record: %s", ws_user.token)
            assert ws_user.token == "something else", ws_user.token
        """
    )
    junit = tmp_path / "junit.xml"
    result = ws_pytester.runpytest(
        "-p", "ws_resilience", "-rA", "-vv", "-o", "log_cli=true", f"--junitxml={junit}"
    )
    result.assert_outcomes(failed=1)
    token, secret = token_file.read_text().split("\n")
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "junitxml": junit.read_text(),
    }
    for name, text in outputs.items():
        assert token not in text, f"token leaked into {name}"
        assert secret not in text, f"secret leaked into {name}"
    # The failure is still reported, just without the token.
    assert "<redacted" in outputs["stdout"]
    result.stdout.fnmatch_lines(["*AssertionError*"])
