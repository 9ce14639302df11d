"""The plugin's configuration glue, driven through real pytest runs (pytester).

In-process runs by default (fast); subprocess runs where entry-point loading is the
point (``-p ws_resilience``, ``-p no:ws_resilience``) or to prove a usage error looks
the same from a fresh interpreter.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatch

import pytest

# Keeps the inner runs' output free of pytest-asyncio's "loop scope unset" warning.
PYTEST_TABLE = '[tool.pytest.ini_options]\nasyncio_default_fixture_loop_scope = "function"\n'

ONE_TEST = """
def test_ok():
    pass
"""

MakeProject = Callable[..., pytest.Pytester]


@pytest.fixture(autouse=True)
def _no_ws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs must not see a WS_ENV from the shell that started the suite."""
    monkeypatch.delenv("WS_ENV", raising=False)


@pytest.fixture
def project(pytester: pytest.Pytester) -> MakeProject:
    """Write the inner project's pyproject.toml (pytest table + ``ws_toml``) and a test."""

    def make(ws_toml: str = "", *, ini: str = "", tests: str = ONE_TEST) -> pytest.Pytester:
        pytester.makepyprojecttoml(PYTEST_TABLE + ini + "\n" + ws_toml)
        pytester.makepyfile(test_sample=tests)
        return pytester

    return make


def assert_usage_error(result: pytest.RunResult, pattern: str) -> None:
    """Exit code 4, exactly one ``ERROR:`` line matching ``pattern``, no traceback."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.outlines + result.errlines
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.errlines
    assert fnmatch(errors[0], f"ERROR: {pattern}"), errors[0]
    output = "\n".join(result.outlines + result.errlines)
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output


# -- usage errors --------------------------------------------------------------------


@pytest.mark.parametrize("run", ["runpytest_inprocess", "runpytest_subprocess"])
def test_unknown_env_on_command_line_is_a_usage_error(project: MakeProject, run: str) -> None:
    pytester = project()
    result = getattr(pytester, run)("--ws-env=nope")
    assert_usage_error(
        result, "unknown env 'nope' (from --ws-env); known envs: local, staging, production"
    )


def test_unknown_env_in_ws_env_variable_is_a_usage_error(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester = project("[tool.ws_resilience.envs.qa]\nrecv_timeout = 20\n")
    monkeypatch.setenv("WS_ENV", "stagin")
    result = pytester.runpytest()
    assert_usage_error(
        result,
        "unknown env 'stagin' (from WS_ENV) (did you mean 'staging'?); "
        "known envs: local, staging, production, qa",
    )


def test_malformed_cli_url_is_a_usage_error(project: MakeProject) -> None:
    result = project().runpytest("--ws-url=http://127.0.0.1:8000/ws")
    assert_usage_error(
        result,
        "--ws-url = 'http://127.0.0.1:8000/ws' is not a WebSocket URL: "
        "the scheme must be ws or wss",
    )


def test_malformed_configured_url_is_a_usage_error(project: MakeProject) -> None:
    result = project('[tool.ws_resilience]\nurl = "ws://127.0.0.1:99999/ws"\n').runpytest()
    assert_usage_error(
        result,
        "pyproject.toml [[]tool.ws_resilience[]]: url = 'ws://127.0.0.1:99999/ws' "
        "is not a valid URL: bad port or host",
    )


def test_missing_secret_variable_is_a_usage_error(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WSR_TEST_UNSET_SECRET", raising=False)
    pytester = project('[tool.ws_resilience]\njwt_secret_env = "WSR_TEST_UNSET_SECRET"\n')
    assert_usage_error(
        pytester.runpytest(),
        "pyproject.toml [[]tool.ws_resilience[]]: jwt_secret_env names WSR_TEST_UNSET_SECRET "
        "but that environment variable is not set",
    )


def test_invalid_toml_value_is_a_usage_error(project: MakeProject) -> None:
    pytester = project('[tool.ws_resilience.envs.staging]\nrecv_timeout = "soon"\n')
    assert_usage_error(
        pytester.runpytest(),
        "pyproject.toml [[]tool.ws_resilience.envs.staging[]]: recv_timeout = 'soon' "
        "is invalid: expected a number of seconds from 1 ms to 1 day",
    )


def test_unknown_key_is_a_usage_error_with_suggestion(project: MakeProject) -> None:
    pytester = project("[tool.ws_resilience]\nconnect_retires = 2\n")
    assert_usage_error(
        pytester.runpytest(),
        "pyproject.toml [[]tool.ws_resilience[]]: unknown key 'connect_retires' "
        "(did you mean 'connect_retries'?)",
    )


def test_recv_timeout_below_agent_timeout_is_a_usage_error(project: MakeProject) -> None:
    pytester = project("[tool.ws_resilience]\nagent_timeout = 30\n")
    assert_usage_error(
        pytester.runpytest(),
        "recv_timeout (10s, profile local) is shorter than agent_timeout "
        "(30s, pyproject [[]tool.ws_resilience[]]): clients would give up before the agent "
        "finishes",
    )
    # The same file is fine where the profile's recv timeout is long enough.
    assert pytester.runpytest("--ws-env=staging").ret == pytest.ExitCode.OK


def test_secret_written_in_the_file_is_a_usage_error_without_the_secret(
    project: MakeProject,
) -> None:
    secret = "pasted-secret-never-printed-7d1e"
    result = project(f'[tool.ws_resilience]\njwt_secret = "{secret}"\n').runpytest()
    assert_usage_error(result, "*jwt_secret must not be set in the file: secrets must come from*")
    assert secret not in "\n".join(result.outlines + result.errlines)


def test_help_still_works_with_a_broken_config(project: MakeProject) -> None:
    result = project("[tool.ws_resilience]\nrecv_timeout = -1\n").runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*--ws-env=NAME*"])


# -- header --------------------------------------------------------------------------


def test_header_defaults_to_local_and_the_embedded_server(project: MakeProject) -> None:
    result = project().runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "ws-resilience: env=local (default), url=embedded reference server",
            "ws-resilience timeouts: recv=10s (profile local), close=12s (profile local), "
            "connect=10s (default), agent=unset (default)",
        ]
    )


def test_header_shows_staging_profile_sources(project: MakeProject) -> None:
    result = project().runpytest("--ws-env=staging")
    result.stdout.fnmatch_lines(
        [
            "ws-resilience: env=staging (--ws-env), url=embedded reference server",
            "ws-resilience timeouts: recv=300s (profile staging), close=302s (profile staging), "
            "connect=10s (default), agent=unset (default)",
        ]
    )


def test_header_shows_pyproject_overrides_and_their_sources(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester = project(
        "[tool.ws_resilience]\nconnect_timeout = 4\nagent_timeout = 60\n\n"
        "[tool.ws_resilience.envs.staging]\nrecv_timeout = 200\n"
        'url = "wss://staging.example.com/agent"\n'
    )
    monkeypatch.setenv("WS_ENV", "staging")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "ws-resilience: env=staging (WS_ENV), url=wss://staging.example.com/agent "
            "(pyproject [[]tool.ws_resilience.envs.staging[]])",
            "ws-resilience timeouts: recv=200s (pyproject [[]tool.ws_resilience.envs.staging[]]), "
            "close=202s (derived: recv_timeout + 2), "
            "connect=4s (pyproject [[]tool.ws_resilience[]]), "
            "agent=60s (pyproject [[]tool.ws_resilience[]])",
        ]
    )


def test_header_shows_cli_url_and_ini_env(project: MakeProject) -> None:
    pytester = project(ini='ws_env = "production"\n')
    result = pytester.runpytest("--ws-url=ws://127.0.0.1:8765/ws")
    result.stdout.fnmatch_lines(
        [
            "ws-resilience: env=production (ini ws_env), url=ws://127.0.0.1:8765/ws (--ws-url)",
            "ws-resilience timeouts: recv=120s (profile production), *",
        ]
    )


def test_header_redacts_a_token_in_the_url(project: MakeProject) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLXBhcnQ"
    result = project().runpytest(f"--ws-url=ws://127.0.0.1:8765/ws?token={token}")
    result.stdout.fnmatch_lines(["ws-resilience: *url=ws://127.0.0.1:8765/ws?token=<redacted>*"])
    assert token not in result.stdout.str()


def test_pyproject_next_to_a_pytest_ini_is_still_read(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyprojecttoml("[tool.ws_resilience]\nrecv_timeout = 42\n")
    pytester.makepyfile(test_sample=ONE_TEST)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["ws-resilience timeouts: recv=42s (pyproject *"])


def test_settings_are_stored_for_fixtures(project: MakeProject) -> None:
    pytester = project(
        '[tool.ws_resilience]\nauth_methods = ["query"]\n',
        tests="""
from pytest_ws_resilience.plugin.stash import SETTINGS_KEY

def test_settings(pytestconfig):
    settings = pytestconfig.stash[SETTINGS_KEY]
    assert settings.env == "staging"
    assert settings.server.path == "/ws"
    assert settings.auth_methods == ("query",)
    assert settings.recv_timeout.value == 300
""",
    )
    result = pytester.runpytest("--ws-env", "staging", "--ws-path", "/ws")
    result.assert_outcomes(passed=1)


# -- plugin loading (subprocess: entry points are the point) -------------------------


def test_help_lists_options_when_loaded_by_name(
    project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With autoloading off, only "-p ws_resilience" (the entry point's name) loads it.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = project().runpytest_subprocess("-p", "ws_resilience", "--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "WebSocket resilience testing (pytest-ws-resilience):",
            "  --ws-env=NAME*",
            "  --ws-url=URL*",
            "  --ws-path=PATH*",
        ]
    )
    result.stdout.fnmatch_lines(["  ws_env (string):*"])


def test_plugin_is_disabled_by_p_no(project: MakeProject) -> None:
    pytester = project()
    result = pytester.runpytest_subprocess("-p", "no:ws_resilience")
    assert result.ret == pytest.ExitCode.OK
    assert "ws-resilience" not in result.stdout.str()
    rejected = pytester.runpytest_subprocess("-p", "no:ws_resilience", "--ws-env=staging")
    assert rejected.ret == pytest.ExitCode.USAGE_ERROR
    rejected.stderr.fnmatch_lines(["*unrecognized arguments: --ws-env=staging*"])


def test_p_no_also_ignores_a_broken_config(project: MakeProject) -> None:
    pytester = project("[tool.ws_resilience]\nrecv_timeout = -1\n")
    result = pytester.runpytest_subprocess("-p", "no:ws_resilience")
    assert result.ret == pytest.ExitCode.OK
