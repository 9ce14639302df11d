"""The run report as users see it: the terminal section, --ws-report JSON and HTML, the
header line, bad paths, and one summary for a whole xdist run.

Every run here is a real pytest run against the embedded reference server; the inner
tests write down what they did (connections, messages, chaos faults), and the report
must say the same.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.websocket_integration

SUITE = """
import json
import pytest

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_two_users_talk(ws_client_factory, n):
    first = await ws_client_factory()
    second = await ws_client_factory()
    for client in (first, second):
        await client.send_json({"type": "ping", "n": n})
        await client.expect(type="pong", n=n)

@pytest.mark.asyncio
async def test_guarded(ws_client_factory, ws_isolation):
    client = await ws_client_factory()
    await client.send_json({"type": "ping", "n": 99})
    await client.expect(type="pong", n=99)

def test_no_websocket():
    assert True

@pytest.mark.skip(reason="needs the staging gateway")
def test_skipped():
    pass
"""


def summary_section(output: str) -> str:
    """The text of the ws-resilience terminal section."""
    match = re.search(r"-+ ws-resilience -+\n(.*?)(?:\n=+ |\Z)", output, re.S)
    assert match, output
    return match.group(1)


def test_the_summary_counts_what_the_tests_did(ws_pytester):
    ws_pytester.makepyfile(test_suite=SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=5, skipped=1)
    section = summary_section(result.stdout.str())

    assert "tests: 6 (passed 5, skipped 1); 4 used WebSocket connections" in section
    assert re.search(r"^connections opened: 7 \(auth: subprotocol 7\)$", section, re.M), section
    assert re.search(r"^handshake: p50 [\d.]+ ms, p95 [\d.]+ ms \(n=7, ", section, re.M), section
    # 7 pings sent; each client also received the server's greeting before its pong.
    assert re.search(r"^messages: 7 sent, 14 received ", section, re.M), section
    checks = re.search(r"^isolation: (\d+) frames checked in 1 test, 0 violations$", section, re.M)
    assert checks and int(checks.group(1)) > 0, section
    assert "skipped: 1\n  1 x needs the staging gateway" in section


def test_a_suite_that_never_connects_gets_no_section(ws_pytester):
    ws_pytester.makepyfile("def test_plain():\n    assert True\n")
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1)
    assert "ws-resilience ---" not in result.stdout.str()


def test_json_report_has_a_record_per_test(ws_pytester, tmp_path):
    path = tmp_path / "report.json"
    ws_pytester.makepyfile(test_suite=SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience", f"--ws-report={path}")
    result.assert_outcomes(passed=5, skipped=1)
    result.stdout.fnmatch_lines(
        [f"ws-resilience report: {path} (JSON)", f"report: written to {path}"]
    )

    report = json.loads(path.read_text())
    assert report["schema_version"] == 1
    assert report["run"]["env"] == "local"
    server = report["run"]["server"]
    assert server["kind"] == "embedded" and server["command"] is None and server["app"] is None
    assert server["url"].startswith("ws://127.0.0.1:") and server["urls"] == [server["url"]]
    assert report["run"]["url"] == f"embedded reference server at {server['url']}"
    result.stdout.fnmatch_lines([f"server: embedded reference server at {server['url']}"])
    assert set(report["run"]["timeouts"]) == {
        "recv_timeout",
        "close_timeout",
        "connect_timeout",
        "agent_timeout",
    }
    assert report["summary"]["connections_opened"] == 7
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    assert len(tests) == 6
    talk = tests["test_two_users_talk[1]"]
    assert (talk["outcome"], talk["worker"], talk["connections_opened"]) == ("passed", "main", 2)
    assert (talk["messages_sent"], talk["messages_received"]) == (2, 4)
    assert talk["started_at"] <= talk["connections"][0]["opened_at"] <= talk["finished_at"]
    assert all(c["closed_at"] is not None for c in talk["connections"])
    assert tests["test_guarded"]["isolation"]["checks"] > 0
    assert tests["test_no_websocket"]["connections_opened"] == 0
    assert tests["test_skipped"]["skip_reason"] == "needs the staging gateway"


def test_chaos_faults_and_pool_reuse_are_reported_per_test(pytester, tmp_path):
    path, seen = tmp_path / "report.json", tmp_path / "faults.json"
    pytester.makeini(
        """
        [pytest]
        asyncio_mode = strict
        asyncio_default_fixture_loop_scope = function
        asyncio_default_test_loop_scope = session
        ws_loop_scope = session
        """
    )
    pytester.makepyfile(
        f"""
        import json
        import pytest

        @pytest.mark.asyncio
        async def test_chaos(ws_chaos, ws_client_factory):
            proxy = await ws_chaos()
            proxy.add_message_fault("drop", select=lambda m: b"lose" in m.payload)
            client = await ws_client_factory(url=proxy.url)
            for n in range(3):
                await client.send_json({{"type": "ping", "lose": n}})
            await client.send_json({{"type": "ping", "keep": 1}})
            await client.expect(type="pong", keep=1)
            with open({str(seen)!r}, "w") as fh:
                json.dump(proxy.stats["faults"], fh)

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_pooled(ws_pool, n):
            client = await ws_pool.acquire()
            await client.send_json({{"type": "ping", "n": n}})
            await client.expect(type="pong", n=n)
        """
    )
    result = pytester.runpytest("-p", "ws_resilience", f"--ws-report={path}")
    result.assert_outcomes(passed=4)
    section = summary_section(result.stdout.str())
    assert "pool: hit rate 67% (2 hits, 1 miss)" in section

    report = json.loads(path.read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    faults = json.loads(seen.read_text())
    assert faults.get("drop") == 3
    assert tests["test_chaos"]["chaos"] == {"proxies": 1, "faults": faults}
    pooled = [tests[f"test_pooled[{n}]"] for n in range(3)]
    assert [t["pool"] for t in pooled] == [
        {"hits": 0, "misses": 1},
        {"hits": 1, "misses": 0},
        {"hits": 1, "misses": 0},
    ]
    # One connection, opened by the first test; the others reuse it.
    assert [t["connections_opened"] for t in pooled] == [1, 0, 0]
    assert [t["messages_sent"] for t in pooled] == [1, 1, 1]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.svgs = 0
        self.data = ""
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.svgs += tag == "svg"
        self._in_data = tag == "script" and ("type", "application/json") in attrs

    def handle_endtag(self, tag: str) -> None:
        self._in_data = False

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.data += data


def test_html_report_is_one_self_contained_page(ws_pytester, tmp_path):
    path = tmp_path / "report.html"
    ws_pytester.makepyfile(test_suite=SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience", f"--ws-report={path}")
    result.assert_outcomes(passed=5, skipped=1)
    result.stdout.fnmatch_lines([f"ws-resilience report: {path} (HTML)"])

    page = path.read_text()
    parser = _Page()
    parser.feed(page)
    assert parser.svgs >= 2
    assert not re.search(r"https?://", page)
    embedded = json.loads(parser.data)
    assert embedded["summary"]["connections_opened"] == 7
    assert len(embedded["tests"]) == 6


def test_a_report_path_in_a_missing_directory_fails_at_start(ws_pytester, tmp_path):
    ws_pytester.makepyfile("def test_never_runs():\n    raise AssertionError\n")
    missing = tmp_path / "nope" / "r.json"
    result = ws_pytester.runpytest("-p", "ws_resilience", f"--ws-report={missing}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --ws-report={missing}: directory {missing.parent} does not exist*"]
    )


def test_a_report_path_that_is_a_directory_fails_at_start(ws_pytester, tmp_path):
    ws_pytester.makepyfile("def test_never_runs():\n    raise AssertionError\n")
    result = ws_pytester.runpytest("-p", "ws_resilience", f"--ws-report={tmp_path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --ws-report={tmp_path} is a directory*"])


XDIST_SUITE = """
import pytest

pytestmark = pytest.mark.concurrent_safe

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(6))
async def test_pair(ws_client_factory, n):
    first = await ws_client_factory()
    second = await ws_client_factory()
    await first.send_json({"type": "ping", "n": n})
    await first.expect(type="pong", n=n)
    await second.expect(type="connection_established")
"""


def under_two_workers(ws_pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The suite with the plugin under pytest-xdist, two workers."""
    pytest.importorskip("xdist")
    return ws_pytester.runpytest_subprocess("-p", "ws_resilience", "-n", "2", *args)


def test_under_xdist_the_controller_sums_every_worker_and_writes_once(ws_pytester, tmp_path):
    path = tmp_path / "report.json"
    ws_pytester.makepyfile(test_pairs=XDIST_SUITE)
    result = under_two_workers(ws_pytester, "--dist", "loadgroup", f"--ws-report={path}")
    result.assert_outcomes(passed=6)
    section = summary_section(result.stdout.str())
    assert "tests: 6 on 2 workers (passed 6)" in section
    assert "connections opened: 12 " in section
    assert re.search(r"^messages: 6 sent, 18 received ", section, re.M), section

    report = json.loads(path.read_text())
    workers = {t["worker"] for t in report["tests"]}
    assert len(report["tests"]) == 6 and workers == {"gw0", "gw1"}
    assert report["run"]["workers"] == ["gw0", "gw1"]
    assert report["summary"]["connections_opened"] == 12
    # Written once, by the controller, atomically: no worker copy, no temporary left.
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


MIXED_SUITE = """
import pytest


def test_plain_a():
    pass


def test_plain_b():
    pass


@pytest.mark.asyncio
async def test_client(ws_client):
    await ws_client.send_json({"type": "ping"})
    await ws_client.expect(type="pong")
"""


def test_under_xdist_a_report_lists_the_tests_that_used_nothing_too(ws_pytester, tmp_path):
    # Without --ws-report a test that used nothing is only counted; with it, every
    # worker records every test, though only the controller writes the file.
    path = tmp_path / "report.json"
    ws_pytester.makepyfile(test_mixed=MIXED_SUITE)
    result = under_two_workers(ws_pytester, f"--ws-report={path}")
    result.assert_outcomes(passed=3)
    names = sorted(t["nodeid"].split("::")[-1] for t in json.loads(path.read_text())["tests"])
    assert names == ["test_client", "test_plain_a", "test_plain_b"]

    result = under_two_workers(ws_pytester)
    result.assert_outcomes(passed=3)
    section = summary_section(result.stdout.str())
    assert re.search(r"^tests: 3 on [12] workers? \(passed 3\); 1 used WebSocket", section, re.M), (
        section
    )
