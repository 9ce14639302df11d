"""Close codes in the run report: every connection's code and who closed it, per test
and in total, in the terminal summary, the ``--ws-report`` JSON and the HTML page.

Pure units first (records, aggregation, text), then real pytest runs of a small suite
against the embedded reference server, whose summary and JSON must say what the
connections did.
"""

from __future__ import annotations

import json
import re

import pytest

from pytest_ws_resilience.client.metrics import ClientMetrics
from pytest_ws_resilience.report.aggregate import Source, summarize
from pytest_ws_resilience.report.document import build_document
from pytest_ws_resilience.report.html import render_html
from pytest_ws_resilience.report.records import (
    ConnectionRecord,
    PhaseResult,
    TestRecord,
    build_record,
    client_usage,
)
from pytest_ws_resilience.report.summary import close_codes_text, summary_lines

T0 = 1_700_000_000.0


def phases() -> list[PhaseResult]:
    return [
        PhaseResult(when, "passed", T0, T0 + 0.1, 0.1) for when in ("setup", "call", "teardown")
    ]


def conn(code: int | None, by: str | None, at: float = T0) -> ConnectionRecord:
    return ConnectionRecord("u#1", at, None if code is None else at + 1, 2.0, "query", code, by)


def rec(nodeid: str, *connections: ConnectionRecord) -> TestRecord:
    return TestRecord(nodeid, "passed", "main", T0, T0 + 1, 1.0, connections=connections)


# -- units ------------------------------------------------------------------------------------


def test_a_span_keeps_the_first_code_and_closer_it_is_given():
    metrics = ClientMetrics()
    metrics.opened(T0, 0.002, "subprotocol")
    metrics.closed(T0 + 1, 4001, "server")  # the reader, when the server closed
    metrics.closed(T0 + 2)  # close() afterwards: changes nothing

    usage = client_usage("u#1", metrics, baseline=None, since=T0)

    assert [(c.closed_at, c.close_code, c.closed_by) for c in usage.connections] == [
        (T0 + 1, 4001, "server")
    ]


def test_a_record_counts_its_connections_codes_and_closers():
    record = rec(
        "t.py::test_a",
        conn(1000, "client"),
        conn(4001, "server"),
        conn(1000, "client"),
        conn(None, None),  # still open (pooled)
    )

    assert record.close_codes == {"1000": 2, "4001": 1}
    assert record.closed_by == {"client": 2, "server": 1}
    data = json.loads(json.dumps(record.as_dict()))
    assert data["close_codes"] == {"1000": 2, "4001": 1}
    assert [c["close_code"] for c in data["connections"]] == [1000, 4001, 1000, None]
    assert TestRecord.from_dict(data) == record  # round trip, as xdist ships records


def test_records_of_older_reports_without_codes_still_load():
    data = rec("t.py::test_a", conn(1000, "client")).as_dict()
    for connection in data["connections"]:
        del connection["close_code"], connection["closed_by"]
    assert TestRecord.from_dict(data).connections[0].close_code is None


def test_the_summary_totals_codes_over_tests_and_workers():
    gw0 = Source("gw0", records=(rec("t.py::a", conn(1000, "client"), conn(1006, "network")),))
    gw1 = Source(
        "gw1",
        records=(
            rec("t.py::b", conn(4001, "server"), conn(1000, "client"), conn(1000, "client")),
            rec("t.py::c"),  # no connection: adds nothing
            rec("t.py::d", conn(None, None)),
        ),
    )
    summary = summarize([gw0, gw1])

    assert summary.close_codes == {"1000": 3, "1006": 1, "4001": 1}
    assert summary.closed_by == {"client": 3, "network": 1, "server": 1}
    assert summary.still_open == 1
    assert summary.as_dict()["close_codes"] == {"1000": 3, "1006": 1, "4001": 1}
    line = "close codes: 1000 x 3, 1006 x 1, 4001 x 1 (closed by client 3, network 1, server 1)"
    assert f"{line}; 1 still open at the end of their test" in summary_lines(summary)


def test_a_run_without_connections_has_no_close_codes_line():
    lines = summary_lines(summarize([Source("main", records=(rec("t.py::plain"),))]))
    assert not [line for line in lines if line.startswith("close codes")]


def test_close_codes_text_orders_by_count_then_code():
    assert close_codes_text({"4001": 5, "1000": 120}, {}) == "4001 x 5, 1000 x 120"
    assert close_codes_text({}, {}, still_open=2) == "none; 2 still open at the end of their test"


def test_the_html_page_has_a_close_codes_tile_and_column():
    source = Source("main", records=(rec("t.py::test_a", conn(4001, "server")),))
    page = render_html(build_document(run={"env": "local"}, sources=[source]))

    assert '<div class="label">Close codes</div><div class="value">4001</div>' in page
    assert "4001 x 1 (closed by server 1)" in page
    assert "<th>close codes</th>" in page
    assert "<td>4001 x 1</td>" in page


def test_build_record_takes_codes_from_client_metrics():
    metrics = ClientMetrics()
    metrics.opened(T0 + 0.1, 0.002, "cookie")
    metrics.closed(T0 + 0.5, 1000, "client")
    record = build_record(
        "t.py::x",
        phases(),
        worker="main",
        clients=[client_usage("a#1", metrics, baseline=None, since=T0)],
    )
    assert record.as_dict()["close_codes"] == {"1000": 1}
    assert record.as_dict()["closed_by"] == {"client": 1}


# -- as users see it: real runs -----------------------------------------------------------------

SUITE = """
import pytest

@pytest.mark.asyncio
async def test_two_clients_closed_by_the_fixture(ws_client_factory):
    for _ in range(2):
        client = await ws_client_factory()
        await client.send_json({"type": "ping"})
        await client.expect(type="pong")

@pytest.mark.asyncio
async def test_token_expiry(ws_client_factory, ws_user_factory):
    client = await ws_client_factory(ws_user_factory(ttl=1))
    assert await client.expect_close(code=4001, within=4) == 4001

def test_no_websocket():
    assert True
"""


def summary_section(output: str) -> str:
    match = re.search(r"-+ ws-resilience -+\n(.*?)(?:\n=+ |\Z)", output, re.S)
    assert match, output
    return match.group(1)


@pytest.mark.websocket_integration
def test_summary_and_json_count_close_codes_per_test_and_in_total(ws_pytester, tmp_path):
    path = tmp_path / "report.json"
    ws_pytester.makepyfile(test_codes=SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience", f"--ws-report={path}")
    result.assert_outcomes(passed=3)

    section = summary_section(result.stdout.str())
    assert re.search(
        r"^close codes: 1000 x 2, 4001 x 1 \(closed by client 2, server 1\)$", section, re.M
    ), section

    report = json.loads(path.read_text())
    assert report["summary"]["close_codes"] == {"1000": 2, "4001": 1}
    assert report["summary"]["closed_by"] == {"client": 2, "server": 1}
    assert report["summary"]["still_open"] == 0
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    assert tests["test_two_clients_closed_by_the_fixture"]["close_codes"] == {"1000": 2}
    assert tests["test_token_expiry"]["close_codes"] == {"4001": 1}
    assert tests["test_token_expiry"]["connections"][0]["closed_by"] == "server"
    assert tests["test_no_websocket"]["close_codes"] == {}


@pytest.mark.websocket_integration
def test_the_html_report_shows_the_close_codes(ws_pytester, tmp_path):
    path = tmp_path / "report.html"
    ws_pytester.makepyfile(test_codes=SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience", f"--ws-report={path}", "-k", "expiry")
    result.assert_outcomes(passed=1, deselected=2)

    page = path.read_text()
    assert '<div class="label">Close codes</div><div class="value">4001</div>' in page
    assert "<td>4001 x 1</td>" in page


@pytest.mark.websocket_integration
def test_close_codes_travel_from_xdist_workers_into_one_summary(ws_pytester, tmp_path):
    path = tmp_path / "report.json"
    ws_pytester.makepyfile(test_codes=SUITE)
    result = ws_pytester.runpytest("-p", "ws_resilience", "-n", "2", f"--ws-report={path}")
    result.assert_outcomes(passed=3)

    section = summary_section(result.stdout.str())
    assert "close codes: 1000 x 2, 4001 x 1 (closed by client 2, server 1)" in section, section
    assert json.loads(path.read_text())["summary"]["close_codes"] == {"1000": 2, "4001": 1}
