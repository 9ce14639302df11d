"""The services' pytest glue without a Docker engine: the rules, the config, the
``ws_services`` marker's skip-or-fail with no daemon, local-process services (shared,
private with chaos, logs on failure) and ``--ws-server-cmd``, through real pytest runs
and real sockets. The Docker engine's part is in ``test_plugin_services_docker.py``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_ws_resilience.config.loading import CommandLine, load_settings
from pytest_ws_resilience.config.services import ServiceSpec
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.validation import REQUIRE_ENV_VAR, require_services
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.plugin.service_rules import (
    services_marker_names,
    skip_or_fail,
    started_line,
    unavailable_reason,
    unknown_service_reason,
)

pytestmark = pytest.mark.websocket_integration

PYTEST_TABLE = """
[tool.pytest.ini_options]
asyncio_mode = "strict"
asyncio_default_fixture_loop_scope = "function"
asyncio_default_test_loop_scope = "function"
"""
NOWHERE = "unix:///tmp/ws-resilience-no-docker-here.sock"
#: The reference server as a local command (it reads the run's secret from
#: $WS_RESILIENCE_SECRET, which the plugin sets).
REFERENCE_CMD = [sys.executable, "-m", "pytest_ws_resilience.testing", "--port", "{port}"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs decide skip-or-fail themselves (CI exports WS_REQUIRE_SERVICES=1)."""
    monkeypatch.delenv(REQUIRE_ENV_VAR, raising=False)
    monkeypatch.delenv("WS_ENV", raising=False)


def _toml_list(values: list[str]) -> str:
    return json.dumps(values)  # a JSON array of plain strings is a TOML array


def services_table(name: str, **keys: object) -> str:
    lines = [f"[tool.ws_resilience.services.{name}]"]
    for key, value in keys.items():
        if isinstance(value, list):
            lines.append(f"{key} = {_toml_list(value)}")
        elif isinstance(value, dict):
            inner = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {inner} }}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


# -- pure rules -------------------------------------------------------------------------


def test_require_services_comes_from_the_option_or_the_variable() -> None:
    assert require_services(True, {}) == (True, "--ws-require-services")
    assert require_services(False, {}) == (False, "")
    for value in ("1", "true", "YES", " on "):
        assert require_services(False, {REQUIRE_ENV_VAR: value}) == (True, REQUIRE_ENV_VAR)
    for value in ("", "0", "false", "no", "off"):
        assert require_services(False, {REQUIRE_ENV_VAR: value}) == (False, "")
    with pytest.raises(WsConfigError, match=r"^WS_REQUIRE_SERVICES='maybe' is invalid: expected"):
        require_services(False, {REQUIRE_ENV_VAR: "maybe"})


def test_skip_unless_services_are_required() -> None:
    assert skip_or_fail(required=False) == "skip"
    assert skip_or_fail(required=True) == "fail"


def test_marker_names_are_validated_and_deduplicated() -> None:
    assert services_marker_names(("api", "db", "api")) == ("api", "db")
    with pytest.raises(ValueError, match=r"^test_x: the ws_services marker needs at least one"):
        services_marker_names((), test="test_x")
    with pytest.raises(ValueError, match=r"^test_x: ws_services marker arguments must be"):
        services_marker_names(("api", 3), test="test_x")


def test_unknown_service_reason_lists_the_known_names() -> None:
    assert unknown_service_reason("apj", {"db", "api"}) == (
        "unknown service 'apj'; known services: api, db"
    )
    assert "no services are defined" in unknown_service_reason("api", ())


def test_unavailable_reason_is_one_line_naming_the_service() -> None:
    cause = "Docker is not available (no such socket)\nmore\nlines"
    assert unavailable_reason("api", cause) == (
        "service 'api' unavailable: Docker is not available (no such socket)"
    )
    own = "service 'api' exited with status 1 after 0.20 s, before it was ready\nlog line"
    assert unavailable_reason("api", own) == own.splitlines()[0]


def test_started_line_says_what_where_and_how_fast() -> None:
    line = started_line(
        "api",
        how="started",
        backend="docker",
        url="ws://127.0.0.1:4100/",
        ident="1a2b3c4d5e6f",
        image="img:1",
        ready_s=0.4213,
    )
    assert line == (
        "api: started docker container 1a2b3c4d5e6f (img:1) at ws://127.0.0.1:4100/, "
        "ready in 0.42 s"
    )


# -- config -------------------------------------------------------------------------------


def _load(tool: dict[str, object]) -> object:
    return load_settings(environ={}, tool_config=tool)


def test_service_tables_become_specs_at_load_time() -> None:
    tool = {"services": {"api": {"command": "srv --port {port}", "auth": True}}}
    settings = load_settings(environ={}, tool_config=tool)
    assert settings.services.specs == {
        "api": ServiceSpec("api", command="srv --port {port}", auth=True)
    }


def test_a_bad_service_table_is_one_config_error() -> None:
    tool = {"services": {"api": {"image": "x", "helth": "tcp"}}}
    with pytest.raises(WsConfigError) as caught:
        load_settings(environ={}, tool_config=tool)
    message = str(caught.value)
    assert "\n" not in message
    assert "[tool.ws_resilience.services.api]" in message
    assert "'helth'" in message and "health" in message


def _with_command(command: str, **cli: Any) -> WsSettings:
    return load_settings(cli=CommandLine(server_cmd=command, **cli), environ={}, tool_config={})


def test_server_cmd_needs_a_port_placeholder_and_no_other_server() -> None:
    server = _with_command(" srv --port {port} ").server
    assert (server.command, server.url, server.url_source, server.kind) == (
        "srv --port {port}",
        None,
        "--ws-server-cmd",
        "command",
    )
    with pytest.raises(WsConfigError, match=r"has no \{port\} placeholder"):
        _with_command("srv --port 8000")
    with pytest.raises(WsConfigError, match=r"is empty"):
        _with_command("  ")
    with pytest.raises(WsConfigError, match=r"--ws-server-cmd and --ws-url both name"):
        _with_command("srv --port {port}", url="ws://127.0.0.1:9/")


# -- marker and policy without a Docker daemon ----------------------------------------------


DOCKER_SERVICE = services_table("api", image="ws-resilience-host:latest", command=REFERENCE_CMD)
NO_DAEMON_TESTS = """
import pytest

@pytest.mark.ws_services("api")
def test_marked():
    pass

def test_by_fixture(ws_services):
    ws_services["api"]

def test_without_services():
    pass
"""
NO_DAEMON_REASON = (
    f"service 'api' unavailable: Docker is not available (DOCKER_HOST={NOWHERE}: no such socket)"
)


@pytest.fixture
def no_daemon(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)
    pytester.makepyprojecttoml(PYTEST_TABLE + DOCKER_SERVICE)
    pytester.makepyfile(test_no_daemon=NO_DAEMON_TESTS)
    return pytester


def test_without_a_daemon_service_tests_skip_with_the_reason(no_daemon: pytest.Pytester) -> None:
    result = no_daemon.runpytest_subprocess("-p", "ws_resilience", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            f"SKIPPED [[]1[]] test_no_daemon.py:3: {NO_DAEMON_REASON}",  # at the test
            f"SKIPPED [[]1[]] test_no_daemon.py:7: {NO_DAEMON_REASON}",
        ]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("how", ["option", "variable"])
def test_without_a_daemon_required_services_fail_with_the_reason(
    no_daemon: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    args = ["-p", "ws_resilience", "-rA"]
    if how == "option":
        args.append("--ws-require-services")
    else:
        monkeypatch.setenv(REQUIRE_ENV_VAR, "1")
    result = no_daemon.runpytest_subprocess(*args)
    # The marker is checked during setup (an error there), the fixture in the body.
    result.assert_outcomes(passed=1, errors=1, failed=1)
    output = result.stdout.str()
    assert output.count(NO_DAEMON_REASON) >= 2
    result.stdout.fnmatch_lines(
        [
            "ERROR test_no_daemon.py::test_marked - Failed: service 'api' unavailable*",
            "FAILED test_no_daemon.py::test_by_fixture - Failed: service 'api' unavailable*",
        ]
    )
    assert "Traceback" not in output
    assert "During handling" not in output
    source = "--ws-require-services" if how == "option" else REQUIRE_ENV_VAR
    result.stdout.fnmatch_lines(
        [f"ws-resilience services: api (*); unavailable -> fail ({source})"]
    )


def test_a_bad_require_variable_is_a_usage_error(
    no_daemon: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_ENV_VAR, "sometimes")
    result = no_daemon.runpytest_subprocess("-p", "ws_resilience")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: WS_REQUIRE_SERVICES='sometimes' is invalid: expected*"])


def test_an_unknown_service_fails_listing_the_known_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PYTEST_TABLE + DOCKER_SERVICE)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.ws_services("apj")
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "ws_resilience")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["unknown service 'apj'; known services: api"])
    assert "Traceback" not in result.stdout.str()


def test_a_marker_without_names_is_a_collection_error_naming_the_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml(PYTEST_TABLE)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.ws_services
        def test_nameless():
            pass
        """
    )
    result = pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_nameless: the ws_services marker needs at least one*"])


def test_a_bad_service_table_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PYTEST_TABLE + services_table("api", image="x", port="eighty"))
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "ws_resilience")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *[[]tool.ws_resilience.services.api[]]: port = 'eighty' is invalid*"]
    )


# -- local-process services ----------------------------------------------------------------


PROCESS_SERVICE = services_table("ref", command=REFERENCE_CMD, auth=True, ping=True)


def test_process_service_is_healthy_shared_and_stopped_at_the_end(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pids = tmp_path / "pids.txt"
    pytester.makepyprojecttoml(PYTEST_TABLE + PROCESS_SERVICE)
    pytester.makepyfile(
        f"""
        import pytest

        PIDS = {str(pids)!r}

        @pytest.mark.ws_services("ref")
        @pytest.mark.parametrize("n", range(3))
        @pytest.mark.asyncio
        async def test_round_trip(n, ws_services, ws_client_factory):
            handle = ws_services["ref"]
            assert handle.shared and handle.backend == "process"
            with open(PIDS, "a") as fh:
                fh.write(f"{{handle.pid}}\\n")
            client = await ws_client_factory(url=handle.url)   # the run's token
            await client.send_json({{"type": "ping"}})
            await client.expect(type="pong")
        """
    )
    result = pytester.runpytest_subprocess("-p", "ws_resilience")
    result.assert_outcomes(passed=3)
    seen = set(pids.read_text().split())
    assert len(seen) == 1, seen  # one process served every test
    result.stdout.fnmatch_lines(["*services started: ref: started process pid *, ready in *"])
    result.stdout.fnmatch_lines(
        ["ws-resilience services: removed 1 service(s) of run * at the end"]
    )
    pid = int(seen.pop())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_private_process_service_survives_kill_and_restart(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PYTEST_TABLE + PROCESS_SERVICE)
    pytester.makepyfile(
        """
        import pytest
        from pytest_ws_resilience.errors import ServiceChaosError

        @pytest.mark.asyncio
        async def test_chaos(ws_service_factory, ws_services, ws_client_factory):
            private = ws_service_factory("ref")
            assert not private.shared
            client = await ws_client_factory(url=private.url)
            await private.kill()
            await private.restart()
            await client.reconnect()
            await client.send_json({"type": "ping"})
            await client.expect(type="pong")
            with pytest.raises(ServiceChaosError, match="function-scoped service"):
                await ws_services["ref"].kill()
        """
    )
    result = pytester.runpytest_subprocess("-p", "ws_resilience")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ref: started private for test_chaos process pid *"])


def test_a_failed_test_gets_the_logs_of_its_services(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PYTEST_TABLE + PROCESS_SERVICE)
    pytester.makepyfile(
        """
        def test_fails(ws_services):
            ws_services["ref"]
            assert False, "boom"

        def test_passes(ws_services):
            ws_services["ref"]
        """
    )
    result = pytester.runpytest_subprocess("-p", "ws_resilience")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- ws-service ref -*",
            "ws-resilience-server listening on ws://127.0.0.1:*",
        ]
    )
    assert result.stdout.str().count("- ws-service ref -") == 1


def test_a_service_that_exits_skips_with_its_reason_and_is_not_retried(
    pytester: pytest.Pytester,
) -> None:
    crash = [sys.executable, "-c", "import sys; print('config missing'); sys.exit(3)  # {port}"]
    pytester.makepyprojecttoml(PYTEST_TABLE + services_table("broken", command=crash))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.ws_services("broken")
        @pytest.mark.parametrize("n", range(2))
        def test_needs_it(n):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "ws_resilience", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]2[]] test_*.py:3: service 'broken' process exited with status 3 after *"]
    )
    required = pytester.runpytest_subprocess("-p", "ws_resilience", "--ws-require-services")
    required.assert_outcomes(errors=2)
    required.stdout.fnmatch_lines(
        ["*service 'broken' process exited with status 3*", "config missing"]
    )
    assert "Traceback" not in required.stdout.str()


# -- --ws-server-cmd --------------------------------------------------------------------------


def test_server_cmd_runs_the_suite_against_that_process(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    pytester.makepyprojecttoml(PYTEST_TABLE)
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.asyncio
        async def test_agent_run(ws_server, ws_client):
            assert ws_server.process is not None and not ws_server.is_embedded
            with open({str(pid_file)!r}, "w") as fh:
                fh.write(str(ws_server.process.pid))
            await ws_client.send_json({{"type": "user_message", "text": "hi"}})
            await ws_client.expect(type="agent_completed")
        """
    )
    command = " ".join(REFERENCE_CMD)
    result = pytester.runpytest_subprocess("-p", "ws_resilience", f"--ws-server-cmd={command}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "ws-resilience: env=local*, url=command '*pytest_ws_resilience.testing --port {port}'"
            " (--ws-server-cmd)"
        ]
    )
    with pytest.raises(ProcessLookupError):  # stopped at session end
        os.kill(int(pid_file.read_text()), 0)


def test_server_cmd_without_port_placeholder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PYTEST_TABLE)
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "ws_resilience", "--ws-server-cmd=myserver --port 8000")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ws-server-cmd = 'myserver --port 8000' has no {port}*"])


def test_a_server_cmd_that_exits_shows_its_output(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PYTEST_TABLE)
    pytester.makepyfile("def test_x(ws_server):\n    pass\n")
    command = f"{sys.executable} -c 'print(\"bad config\"); raise SystemExit(2)' {{port}}"
    result = pytester.runpytest_subprocess("-p", "ws_resilience", f"--ws-server-cmd={command}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*service 'server-under-test' process exited with status 2 after *", "*bad config"]
    )
