"""Loading the plugin costs a run only what every run needs (issue 16: start-up).

Every pytest process, and every xdist worker, loads the plugin before its first test.
What a test may never use (the client and websockets, tokens and pyjwt, the servers,
the pool, storms, chaos, the isolation guard, the HTML report, filelock, the Docker
SDK) is imported when a fixture first needs it. Checked on what a collect-only run of a
real project imported, in a fresh interpreter (this process has imported it all).
"""

from __future__ import annotations

import json
import secrets

import pytest

from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

# Modules a run that only collects must not import (each is a fixture's business).
DEFERRED = (
    "websockets",
    "jwt",
    "docker",
    "filelock",
    "pytest_ws_resilience.client.client",
    "pytest_ws_resilience.client.tokens",
    "pytest_ws_resilience.testing.server",
    "pytest_ws_resilience.servers.handle",
    "pytest_ws_resilience.servers.under_test",
    "pytest_ws_resilience.servers.sharing",
    "pytest_ws_resilience.load.storm",
    "pytest_ws_resilience.pool.pool",
    "pytest_ws_resilience.chaos.proxy",
    "pytest_ws_resilience.isolation.guard",
    "pytest_ws_resilience.isolation.detector",
    "pytest_ws_resilience.report.html",
    "pytest_ws_resilience.fuzz.runner",
    "pytest_ws_resilience.fuzz.strategies",
    "hypothesis",
    "hypothesis_jsonschema",
    # Importing Locust monkey-patches the whole process with gevent: never in pytest.
    "locust",
    "gevent",
    "pytest_ws_resilience.locust.distributed",
    "pytest_ws_resilience.locust.attach",
)

# What was imported when collection finished (MODULES_OUT), and when the run did
# (MODULES_OUT + ".after").
MODULES_PLUGIN = """
import json, os, sys

def _dump(suffix):
    with open(os.environ["MODULES_OUT"] + suffix, "w") as out:
        json.dump(sorted(sys.modules), out)

def pytest_collection_finish(session):
    _dump("")

def pytest_sessionfinish(session):
    _dump(".after")
"""

TESTS = """
import pytest

@pytest.mark.asyncio
async def test_ping(ws_client):
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(modules_seen=MODULES_PLUGIN, test_ping=TESTS)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def _imported(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[pytest.RunResult, set[str]]:
    out = pytester.path / "modules.json"
    monkeypatch.setenv("MODULES_OUT", str(out))
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = pytester.runpytest_subprocess("-p", "ws_resilience", "-p", "modules_seen", *args)
    return result, set(json.loads(out.read_text()))


def test_collecting_imports_none_of_what_only_fixtures_use(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, modules = _imported(project, monkeypatch, "--co", "-q")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*1 test collected*"])
    assert "pytest_ws_resilience.plugin.entry" in modules  # the plugin did load
    loaded = sorted(name for name in DEFERRED if name in modules)
    assert loaded == [], f"imported at start-up: {loaded}"


def test_a_test_that_uses_a_client_gets_everything_it_needs_on_first_use(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, _ = _imported(project, monkeypatch, "-q")
    result.assert_outcomes(passed=1)


# What serves an app, a command or the embedded server: a run against a configured URL
# (staging) needs none of it, and each module's logger would join the ones pytest's log
# capture walks at every phase of every test.
SERVING = (
    "docker",
    "pytest_ws_resilience.servers.asgi_app",
    "pytest_ws_resilience.servers.asgi_process",
    "pytest_ws_resilience.servers.asgi_thread",
    "pytest_ws_resilience.servers.handle",
    "pytest_ws_resilience.testing.embedded",
    "pytest_ws_resilience.testing.server",
)


def test_a_run_against_a_url_imports_nothing_that_serves(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = secrets.token_urlsafe(32)
    pytester.makepyfile(modules_seen=MODULES_PLUGIN, test_ping=TESTS)
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        asyncio_default_fixture_loop_scope = "function"

        [tool.ws_resilience]
        jwt_secret_env = "STARTUP_TEST_SECRET"
        """
    )
    out = pytester.path / "modules.json"
    monkeypatch.setenv("MODULES_OUT", str(out))
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    monkeypatch.setenv("STARTUP_TEST_SECRET", secret)
    with EmbeddedServer(ServerConfig(secret=secret)) as server:
        result = pytester.runpytest_subprocess(
            "-p", "ws_resilience", "-p", "modules_seen", f"--ws-url={server.url}"
        )
    result.assert_outcomes(passed=1)  # the test connected to the server at that URL
    modules = set(json.loads(out.with_name("modules.json.after").read_text()))
    assert "pytest_ws_resilience.client.client" in modules
    loaded = sorted(name for name in SERVING if name in modules)
    assert loaded == [], f"imported by a run against a URL: {loaded}"
