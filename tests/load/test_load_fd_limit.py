"""The open-file limit of a storm, for real: a soft limit too low for the storm is raised
(and the storm succeeds over real sockets), a hard limit too low is one clear error
before anything connects; and a fresh process reports its memory per connection.

Each case runs in its own Python process (or pytest run): the limits are process-wide,
and lowering them in the test process would starve the tests that follow.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource", reason="no RLIMIT_NOFILE on this platform")

pytestmark = pytest.mark.websocket_integration

#: A storm against a server in the same process: two descriptors per connection.
CONNECTIONS = 300
#: Far below what the storm needs (600 sockets), far above what the process holds.
LOW_SOFT = 200

SCRIPT = """
import asyncio, json, resource, sys
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.errors import WsConfigError
from pytest_ws_resilience.load.storm import Storm
from pytest_ws_resilience.testing import ReferenceServer, ServerConfig

SOFT, HARD, N = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

async def main():
    tokens = TokenFactory()
    settings = WsSettings(connect_timeout=TimeoutValue(30.0, "test"))
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    async with ReferenceServer(config) as server, Storm(server.url, tokens, settings) as storm:
        # Limits lowered once the server listens and the warm-up is done: the storm's
        # own descriptors are what the limit has to make room for.
        await storm.connect(5)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1] if HARD < 0 else HARD
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(SOFT, hard), hard))
        out = {"soft_before": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}
        try:
            result = await storm.connect(N)
        except WsConfigError as exc:
            out["error"] = str(exc)
        else:
            out.update(
                succeeded=result.succeeded,
                errors=result.errors,
                per_connection=result.rss_per_connection_bytes,
                growth=result.rss_growth_bytes,
                describe=result.describe().splitlines()[0],
            )
        out["soft_after"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        out["handshakes"] = server.stats.handshakes_attempted
    print(json.dumps(out))

asyncio.run(main())
"""


def run_storm(soft: int, hard: int, connections: int) -> dict[str, object]:
    """Run `SCRIPT` in a fresh process; its one line of JSON (bounded)."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(soft), str(hard), str(connections)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_soft_limit_too_low_is_raised_and_every_connection_succeeds() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4 * CONNECTIONS:
        pytest.skip(f"hard open-file limit {hard} leaves no room to raise a soft one")
    out = run_storm(LOW_SOFT, -1, CONNECTIONS)
    assert out["soft_before"] == LOW_SOFT
    assert out["succeeded"] == CONNECTIONS, out
    assert not any(out["errors"].values()), out  # type: ignore[attr-defined]
    # Room for both ends of every connection (the server runs in the process).
    assert out["soft_after"] >= 2 * CONNECTIONS  # type: ignore[operator]


def test_memory_per_connection_of_a_fresh_process_is_reported() -> None:
    out = run_storm(1 << 30, -1, CONNECTIONS)  # no lowering: min(soft, hard) is the hard one
    growth, per = out["growth"], out["per_connection"]
    assert isinstance(growth, int) and growth > 0, out  # 300 clients and their server ends
    assert per == pytest.approx(growth / CONNECTIONS)
    assert f"({per / 1024:.1f} KiB per connection)" in out["describe"]  # type: ignore[operator]


def test_a_hard_limit_too_low_is_one_clear_error_before_anything_connects() -> None:
    out = run_storm(LOW_SOFT, LOW_SOFT, CONNECTIONS)
    error = out.get("error")
    assert isinstance(error, str), out
    assert f"a storm of {CONNECTIONS} connections needs" in error
    assert f"the hard limit is {LOW_SOFT}" in error
    assert "ulimit -Hn" in error
    assert "\n" not in error
    assert out["soft_after"] == LOW_SOFT  # nothing changed
    assert out["handshakes"] == 5  # the warm-up's: the storm itself connected nothing


def test_ws_storm_raises_the_soft_limit_in_a_users_suite(ws_pytester: pytest.Pytester) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4 * CONNECTIONS:
        pytest.skip(f"hard open-file limit {hard} leaves no room to raise a soft one")
    ws_pytester.makepyfile(
        test_fd=textwrap.dedent(
            f"""
            import resource
            import pytest

            @pytest.mark.asyncio
            async def test_storm(ws_storm):
                _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, ({LOW_SOFT}, hard))
                result = await ws_storm.connect({CONNECTIONS})
                result.assert_errors(max=0)
                assert result.succeeded == {CONNECTIONS}
                soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
                assert soft >= 2 * {CONNECTIONS}, soft
            """
        )
    )
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
