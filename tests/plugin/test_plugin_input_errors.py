"""Bad inputs to the plugin end the run (or the test) with one line naming the input.

Each was taken before: timeouts of 1e308 (then ``OverflowError`` in every test),
``--ws-report=/proc/r.json`` and an empty ``--ws-report=`` (exit 0, nothing written),
``ws_env("nope")`` / ``ws_env("LOCAL")`` (the test silently never ran in any env),
``--ws-app=json:dumps`` (a traceback at the first test), and confusing messages from the
fixtures' arguments. Real pytest runs (pytester), as users meet them.
"""

from __future__ import annotations

from fnmatch import fnmatch

import pytest

# Keeps the inner runs' output free of pytest-asyncio's "loop scope unset" warning.
PYTEST_TABLE = '[tool.pytest.ini_options]\nasyncio_default_fixture_loop_scope = "function"\n'

ONE_TEST = """
def test_ok():
    pass
"""


@pytest.fixture(autouse=True)
def _no_ws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WS_ENV", raising=False)


def make_project(pytester: pytest.Pytester, ws_toml: str = "", tests: str = ONE_TEST) -> None:
    pytester.makepyprojecttoml(PYTEST_TABLE + "\n" + ws_toml)
    pytester.makepyfile(test_sample=tests)


def assert_usage_error(result: pytest.RunResult, pattern: str) -> None:
    """Exit code 4, exactly one ``ERROR:`` line matching ``pattern``, no traceback."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.outlines + result.errlines
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.errlines
    assert fnmatch(errors[0], f"ERROR: {pattern}"), errors[0]
    output = "\n".join(result.outlines + result.errlines)
    assert "Traceback" not in output
    assert "INTERNALERROR" not in output


# -- the configuration ---------------------------------------------------------------


def test_a_timeout_of_1e308_is_a_usage_error_before_any_test(pytester: pytest.Pytester) -> None:
    make_project(pytester, "[tool.ws_resilience]\nrecv_timeout = 1e308\n")
    assert_usage_error(
        pytester.runpytest("-p", "ws_resilience"),
        "pyproject.toml [[]tool.ws_resilience[]]: recv_timeout = 1e+308 is invalid: "
        "expected a number of seconds from 1 ms to 1 day",
    )


def test_connect_retries_of_2_63_is_a_usage_error(pytester: pytest.Pytester) -> None:
    make_project(pytester, "[tool.ws_resilience]\nconnect_retries = 9223372036854775807\n")
    assert_usage_error(
        pytester.runpytest("-p", "ws_resilience"),
        "*connect_retries = 9223372036854775807 is invalid: expected a whole number from 0 to 100",
    )


def test_app_share_of_1_is_a_usage_error_without_an_app(pytester: pytest.Pytester) -> None:
    make_project(pytester, "[tool.ws_resilience]\napp_share = 1\n")
    assert_usage_error(
        pytester.runpytest("-p", "ws_resilience"),
        "*app_share = 1 is invalid: expected true or false",
    )


# -- the command line ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "pattern"),
    [
        (
            "--ws-report=/proc/r.json",
            "--ws-report=/proc/r.json: cannot create a file in /proc (*)",
        ),
        ("--ws-report=", "--ws-report= is empty: give a file path, *"),
        ("--ws-report=   ", "--ws-report=    is empty: give a file path, *"),
    ],
)
def test_a_report_path_that_cannot_be_written_is_a_usage_error(
    pytester: pytest.Pytester, option: str, pattern: str
) -> None:
    make_project(pytester)
    assert_usage_error(pytester.runpytest("-p", "ws_resilience", option), pattern)


def test_a_report_path_check_leaves_no_probe_file_behind(pytester: pytest.Pytester) -> None:
    make_project(pytester)
    result = pytester.runpytest("-p", "ws_resilience", "--ws-report=out/r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # out/ does not exist
    (pytester.path / "out").mkdir()
    result = pytester.runpytest("-p", "ws_resilience", "--ws-report=out/r.json")
    result.assert_outcomes(passed=1)
    assert sorted(p.name for p in (pytester.path / "out").iterdir()) == ["r.json"]


@pytest.mark.parametrize(
    ("app", "pattern"),
    [
        (
            "json:dumps",
            "--ws-app=json:dumps: json.dumps takes (obj, *, *: not an ASGI app (called as "
            "app(scope, receive, send))",
        ),
        ("json:decoder", "--ws-app=json:decoder: json.decoder is a module, not an ASGI app *"),
        ("os:sep", "--ws-app=os:sep: os.sep is a str, not an ASGI app (a callable)"),
        (
            "json:dumps()",
            "--ws-app=json:dumps(): json.dumps takes *: not an app factory (called with no "
            "argument)",
        ),
    ],
)
def test_an_app_path_naming_no_asgi_app_is_a_usage_error(
    pytester: pytest.Pytester, app: str, pattern: str
) -> None:
    make_project(pytester)
    assert_usage_error(pytester.runpytest("-p", "ws_resilience", f"--ws-app={app}"), pattern)


# -- markers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "hint"),
    [("nope", ""), ("LOCAL", " (did you mean 'local'?)"), ("stagin", " (did you mean 'staging'?)")],
)
def test_a_ws_env_marker_naming_an_unknown_env_is_a_collection_error(
    pytester: pytest.Pytester, env: str, hint: str
) -> None:
    make_project(
        pytester,
        "[tool.ws_resilience.envs.qa]\npath = '/ws'\n",
        tests=f"""
import pytest

@pytest.mark.ws_env({env!r})
def test_only_there():
    pass

def test_other():
    pass
""",
    )
    result = pytester.runpytest("-p", "ws_resilience")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the run
    result.stdout.fnmatch_lines(
        [
            f"*test_only_there: ws_env marker names unknown env {env!r}{hint}; known envs: "
            f"local, staging, production, qa (add [[]tool.ws_resilience.envs.{env}[]] to "
            f"define it)"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_ws_env_marker_naming_a_configured_env_is_taken(pytester: pytest.Pytester) -> None:
    make_project(
        pytester,
        "[tool.ws_resilience.envs.qa]\npath = '/ws'\n",
        tests="""
import pytest

@pytest.mark.ws_env("qa", "local")
def test_here():
    pass

@pytest.mark.ws_env("qa")
def test_elsewhere():
    pass
""",
    )
    pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1, skipped=1)


# -- fixture arguments ---------------------------------------------------------------

FIXTURE_ARGUMENT_TESTS = """
import pytest

def test_user_factory_sub(ws_user_factory):
    ws_user_factory(sub="alice")

@pytest.mark.asyncio
async def test_client_factory_user_string(ws_client_factory):
    await ws_client_factory(user="x")

@pytest.mark.asyncio
async def test_client_factory_bogus_option(ws_client_factory):
    await ws_client_factory(bogus_option=1)

@pytest.mark.asyncio
async def test_client_factory_nan_recv_timeout(ws_client_factory):
    await ws_client_factory(recv_timeout=float("nan"))

@pytest.mark.asyncio
async def test_expect_nan_timeout(ws_client):
    await ws_client.expect(type="never", timeout=float("nan"))

@pytest.mark.asyncio
async def test_storm_slow_rate(ws_storm):
    await ws_storm.connect(2, rate=1e-9)
"""


def test_bad_fixture_arguments_fail_their_test_with_one_line(pytester: pytest.Pytester) -> None:
    make_project(pytester, tests=FIXTURE_ARGUMENT_TESTS)
    result = pytester.runpytest("-p", "ws_resilience", "--tb=line")
    result.assert_outcomes(failed=6)
    result.stdout.fnmatch_lines(
        [
            "*ValueError: user(sub=...) is not a claim you can set: the subject is the "
            "user's id: pass id=...",
            "*ValueError: ws_client_factory(user=...) takes a TestUser (e.g. "
            "ws_user_factory(id=...)), got str 'x'; a token of your own goes in token=",
            "*ValueError: WsClient got an unknown option 'bogus_option': *",
            "*ValueError: recv_timeout = nan is invalid: expected a number of seconds from "
            "1 ms to 1 day",
            "*ValueError: timeout = nan is invalid: expected a number of seconds from 1 ms "
            "to 1 day",
            "*ValueError: rate = 1e-09 is too slow: 2 connections would take 1e+09 s to "
            "arrive (at most 1 day); raise the rate or lower n",
        ],
        consecutive=False,
    )
    output = result.stdout.str()
    for confusing in ("AttributeError", "TypeError", "multiple values"):
        assert confusing not in output
