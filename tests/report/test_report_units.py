"""The run report's pure parts: records, aggregation across workers, summary text, the
JSON document, the HTML page and its SVG charts, all from plain data."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from pytest_ws_resilience.client.metrics import MAX_SPANS, ClientMetrics, Counters
from pytest_ws_resilience.redaction import REDACTED
from pytest_ws_resilience.report.aggregate import Source, merge_records, summarize
from pytest_ws_resilience.report.document import (
    SCHEMA_VERSION,
    build_document,
    dumps,
    is_html_path,
    redact_tree,
)
from pytest_ws_resilience.report.html import DATA_ELEMENT_ID, embedded_json, render_html
from pytest_ws_resilience.report.records import (
    ClientUsage,
    ConnectionRecord,
    IsolationRecord,
    PhaseResult,
    TestRecord,
    build_record,
    client_usage,
    test_outcome,
)
from pytest_ws_resilience.report.summary import (
    format_bytes,
    plural,
    storm_line,
    summary_lines,
)
from pytest_ws_resilience.report.svg import (
    Axis,
    histogram,
    histogram_bins,
    nice_ticks,
    percentile_bars,
    stack_rows,
    timeline,
)
from pytest_ws_resilience.report.tally import Tally
from pytest_ws_resilience.stats import Distribution

pytestmark = pytest.mark.websocket_unit

T0 = 1_700_000_000.0
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLWJ5dGVz"


def phases(
    *outcomes: str, start: float = T0, skip_reason: str | None = None, xfail: bool = False
) -> list[PhaseResult]:
    """Phase results for setup/call/teardown outcomes, 0.1 s each, back to back."""
    result = []
    for i, (when, outcome) in enumerate(zip(("setup", "call", "teardown"), outcomes, strict=False)):
        result.append(
            PhaseResult(
                when=when,
                outcome=outcome,
                start=start + i * 0.1,
                stop=start + (i + 1) * 0.1,
                duration=0.1,
                skip_reason=skip_reason if outcome == "skipped" else None,
                xfail=xfail and when == "call",
            )
        )
    return result


def connection(opened: float, handshake_ms: float, auth: str = "subprotocol") -> ConnectionRecord:
    return ConnectionRecord("u#1", opened, opened + 0.05, handshake_ms, auth)


def record(nodeid: str, worker: str, start: float, **fields: object) -> TestRecord:
    base: dict[str, object] = {
        "nodeid": nodeid,
        "outcome": "passed",
        "worker": worker,
        "started_at": start,
        "finished_at": start + 0.3,
        "duration_s": 0.3,
    }
    base.update(fields)
    return TestRecord(**base)  # type: ignore[arg-type]


# -- outcomes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "xfail", "expected"),
    [
        (("passed", "passed", "passed"), False, "passed"),
        (("passed", "failed", "passed"), False, "failed"),
        (("failed", "passed"), False, "error"),  # setup failed, no call
        (("passed", "passed", "failed"), False, "error"),  # teardown failed
        (("passed", "skipped", "passed"), True, "xfailed"),
        (("passed", "passed", "passed"), True, "xpassed"),
    ],
)
def test_outcome_follows_pytest_counting(outcomes, xfail, expected):
    assert test_outcome(phases(*outcomes, xfail=xfail)) == (expected, None)


def test_a_skipped_test_keeps_its_reason():
    assert test_outcome(phases("skipped", "passed", skip_reason="needs staging")) == (
        "skipped",
        "needs staging",
    )


# -- client usage and records ----------------------------------------------------------------


def test_client_usage_counts_only_what_the_test_added():
    metrics = ClientMetrics()
    metrics.opened(T0 - 10, 0.004, "query")  # an earlier test's connection (pooled)
    metrics.sent, metrics.received = 5, 7
    baseline = metrics.counters()
    metrics.closed(T0 - 5)
    metrics.opened(T0 + 1, 0.002, "subprotocol")
    metrics.sent += 2
    metrics.received += 3
    metrics.bytes_sent += 40

    usage = client_usage("u#1", metrics, baseline=baseline, since=T0)

    assert [(c.opened_at, c.handshake_ms, c.auth_method) for c in usage.connections] == [
        (T0 + 1, 2.0, "subprotocol")
    ]
    assert usage.counters == Counters(sent=2, received=3, bytes_sent=40)


def test_client_metrics_keep_a_bounded_number_of_spans():
    metrics = ClientMetrics()
    for n in range(MAX_SPANS + 5):
        metrics.opened(T0 + n, 0.001, "query")
        metrics.closed(T0 + n + 0.5)
    assert metrics.connects == MAX_SPANS + 5
    assert len(metrics.spans) == MAX_SPANS
    assert metrics.spans[0].closed_at == T0 + 0.5
    assert json.loads(json.dumps(metrics.as_dict()))["spans"][0]["auth_method"] == "query"


def test_build_record_sums_clients_proxies_and_keeps_storms_as_json():
    first = ClientMetrics()
    first.opened(T0 + 0.2, 0.003, "subprotocol")
    first.sent, first.received, first.retries = 2, 4, 1
    second = ClientMetrics()
    second.opened(T0 + 0.1, 0.005, "cookie")
    second.sent = 1
    rec = build_record(
        "t.py::test_x",
        phases("passed", "passed", "passed"),
        worker="gw1",
        clients=[
            client_usage("a#1", first, baseline=None, since=T0),
            client_usage("b#2", second, baseline=None, since=T0),
        ],
        isolation=IsolationRecord(checks=9, violations=0),
        chaos_faults=[{"drop": 2, "delay": 0}, {"drop": 1, "latency": 3}],
        services=["redis", "redis", "api"],
        pool_hits=1,
        pool_misses=2,
        storms=[{"kind": "connect", "errors": {"refused": 1}, "samples": (1.0, 2.0)}],
    )

    assert rec.outcome == "passed"
    assert (rec.started_at, rec.finished_at) == (T0, pytest.approx(T0 + 0.3))
    assert [c.client for c in rec.connections] == ["b#2", "a#1"]  # by opening time
    assert (rec.messages_sent, rec.messages_received, rec.retries) == (3, 4, 1)
    assert rec.auth_methods == {"cookie": 1, "subprotocol": 1}
    assert rec.chaos_faults == {"drop": 3, "latency": 3}
    assert rec.chaos_proxies == 2
    assert rec.services == ("redis", "api")
    assert rec.storms[0]["samples"] == [1.0, 2.0]
    assert rec.used_plugin


def test_a_test_without_the_plugin_has_an_empty_record():
    rec = build_record("t.py::test_plain", phases("passed", "passed", "passed"), worker="main")
    assert not rec.used_plugin
    assert rec.as_dict()["connections_opened"] == 0


def test_records_round_trip_through_json():
    rec = record(
        "t.py::test_a",
        "gw0",
        T0,
        connections=(connection(T0 + 0.1, 2.5),),
        messages_sent=3,
        isolation=IsolationRecord(10, 1, strict=True, expected=False),
        chaos_faults={"drop": 2},
        chaos_proxies=1,
        services=("redis",),
        pool_hits=2,
        storms=({"kind": "connect", "attempted": 5},),
    )
    again = TestRecord.from_dict(json.loads(json.dumps(rec.as_dict())))
    assert again == rec


# -- aggregation across workers ---------------------------------------------------------------


def two_workers() -> list[Source]:
    gw0 = Source(
        "gw0",
        records=(
            record(
                "t.py::test_a",
                "gw0",
                T0,
                connections=(connection(T0, 2.0), connection(T0 + 0.1, 4.0)),
                messages_sent=2,
                messages_received=5,
                isolation=IsolationRecord(12, 0),
                pool_misses=1,
            ),
            record(
                "t.py::test_skip",
                "gw0",
                T0 + 1,
                outcome="skipped",
                skip_reason="needs staging",
            ),
        ),
        chaos_seed=7,
    )
    gw1 = Source(
        "gw1",
        records=(
            record(
                "t.py::test_b",
                "gw1",
                T0 + 0.5,
                connections=(connection(T0 + 0.5, 6.0, "query"), connection(T0 + 0.6, 8.0)),
                messages_sent=4,
                messages_received=1,
                isolation=IsolationRecord(3, 2, expected=True),
                chaos_faults={"drop": 1},
                chaos_proxies=1,
                pool_hits=3,
            ),
            record(
                "t.py::test_skip2", "gw1", T0 + 2, outcome="skipped", skip_reason="needs staging"
            ),
        ),
        services_started=("redis: started",),
        chaos_seed=7,
    )
    # Through the same plain-data channel xdist uses.
    return [Source.from_payload(json.loads(json.dumps(s.to_payload()))) for s in (gw1, gw0)]


def test_two_workers_make_one_summary():
    sources = [*two_workers(), Source("controller", services_started=("db: adopted",))]
    summary = summarize(sources)

    assert summary.tests == 4
    assert summary.workers == ("gw0", "gw1")
    assert summary.outcomes == {"passed": 2, "skipped": 2}
    assert summary.connections == 4
    assert summary.handshake_ms == Distribution.of([2.0, 4.0, 6.0, 8.0])
    assert summary.auth_methods == {"subprotocol": 3, "query": 1}
    assert (summary.messages_sent, summary.messages_received) == (6, 6)
    assert (summary.isolation_tests, summary.isolation_checks) == (2, 15)
    assert (summary.isolation_violations, summary.isolation_unexpected) == (2, 0)
    assert summary.chaos_faults == {"drop": 1}
    assert (summary.pool_hits, summary.pool_misses, summary.pool_hit_rate) == (3, 1, 0.75)
    assert summary.services_started == ("redis: started", "db: adopted")
    assert summary.skips == {"needs staging": 2}
    assert summary.chaos_seeds == {"gw0": 7, "gw1": 7}
    assert summary.tests_using_plugin == 2
    assert [r.nodeid for r in merge_records(sources)] == [
        "t.py::test_a",
        "t.py::test_b",
        "t.py::test_skip",
        "t.py::test_skip2",
    ]


def test_tests_counted_but_not_recorded_add_to_the_summary_and_cross_the_channel():
    # Without --ws-report, a test that passed without using the plugin is only counted.
    gw0, gw1 = two_workers()
    counted_only = Source("gw2", tally=Tally(passed=3), chaos_seed=9)
    sources = [Source.from_payload(s.to_payload()) for s in (gw0, gw1, counted_only)]
    assert sources[2].tally == Tally(passed=3)
    summary = summarize(sources)
    before = summarize([gw0, gw1])
    assert summary.tests == before.tests + 3
    assert summary.outcomes == {**before.outcomes, "passed": before.outcomes["passed"] + 3}
    assert summary.workers == ("gw0", "gw1", "gw2")
    assert summary.chaos_seeds == {**before.chaos_seeds, "gw2": 9}
    assert summary.tests_using_plugin == before.tests_using_plugin  # counted: used nothing
    assert merge_records(sources) == merge_records([gw0, gw1])
    # A run of such tests only is not a run that used the plugin: no section.
    assert not summarize([Source("main", tally=Tally(passed=5))]).used


def _client_tests() -> list[list[ClientUsage]]:
    """The clients of four passed tests: two clients (one pooled from an earlier test,
    one closed by the server), one, one made and never connected, and none."""
    pooled, fresh, idle = ClientMetrics(), ClientMetrics(), ClientMetrics()
    pooled.opened(T0 - 10, 0.004, "query")
    pooled.sent, pooled.received, pooled.bytes_received = 5, 7, 90
    baseline = pooled.counters()
    pooled.sent, pooled.retries = 6, 1
    fresh.opened(T0 + 0.1, 0.002, "subprotocol")
    fresh.closed(T0 + 0.2, 4001, "server")
    fresh.sent, fresh.bytes_sent = 2, 30
    one = ClientMetrics()
    one.opened(T0 + 1, 0.003, None)
    one.closed(T0 + 1.1, 1000, "client")
    return [
        [
            client_usage("a#1", pooled, baseline=baseline, since=T0),
            client_usage("a#2", fresh, baseline=None, since=T0),
        ],
        [client_usage("b#3", one, baseline=None, since=T0 + 1)],
        [client_usage("c#4", idle, baseline=None, since=T0 + 2)],
        [],
    ]


def test_a_tallied_test_adds_to_the_summary_what_its_record_would():
    # Without --ws-report a passed test that used only clients is tallied, not
    # recorded: the summary must not tell the two apart.
    tests = _client_tests()
    recorded = Source(
        "main",
        records=tuple(
            build_record(
                f"t.py::test_{n}",
                phases("passed", "passed", "passed"),
                worker="main",
                clients=usages,
            )
            for n, usages in enumerate(tests)
        ),
    )
    tally = Tally()
    for usages in tests:
        tally.add_usage(usages)
    tallied = Source.from_payload(Source("main", tally=tally).to_payload())

    assert summarize([tallied]) == summarize([recorded])
    assert summarize([tallied]).tests_using_plugin == 2  # the idle client's test: no
    # And beside records of other tests, in one process or across workers.
    gw0, gw1 = two_workers()
    mixed = summarize([gw0, gw1, Source("gw2", tally=tally)])
    assert mixed == summarize([gw0, gw1, Source("gw2", records=recorded.records)])


def test_summary_lines_name_every_figure():
    text = "\n".join(summary_lines(summarize(two_workers()), report="written to /tmp/r.json"))

    assert "tests: 4 on 2 workers (passed 2, skipped 2); 2 used WebSocket connections" in text
    assert "connections opened: 4 (auth: subprotocol 3, query 1)" in text
    assert "handshake: p50 5.0 ms, p95 7.7 ms (n=4, max 8.0 ms)" in text
    assert "messages: 6 sent, 6 received" in text
    assert "isolation: 15 frames checked in 2 tests, 2 violations (2 provoked on purpose)" in text
    assert "chaos: 1 fault applied (drop 1) by 1 proxy; seed 7" in text
    assert "pool: hit rate 75% (3 hits, 1 miss)" in text
    assert "services started: redis: started" in text
    assert "  2 x needs staging" in text
    assert "report: written to /tmp/r.json" in text


def test_a_run_that_never_connects_is_not_used():
    plain = Source("main", records=(record("t.py::test_plain", "main", T0),))
    assert not summarize([plain]).used
    assert summarize(two_workers()).used


def test_storm_line_and_small_formatters():
    storm = {
        "kind": "connect",
        "label": "burst",
        "attempted": 50,
        "succeeded": 49,
        "errors": {"timeout": 1},
        "rss_growth_bytes": 2048,
        "distributions": {"connect_ms": {"count": 49, "p50": 1.5, "p95": 3.25, "p99": 4.0}},
    }
    assert storm_line(storm) == (
        "burst (connect): 49/50 ok, connect p50/p95/p99 1.5/3.2/4.0 ms, errors: timeout 1, "
        "RSS +2.0 KiB"
    )
    per_connection = {**storm, "rss_growth_bytes": 49 * 66 * 1024}
    per_connection["rss_per_connection_bytes"] = per_connection["rss_growth_bytes"] / 49
    assert storm_line(per_connection).endswith("RSS +3.2 MiB (66.0 KiB per connection)")
    assert (format_bytes(512), format_bytes(1536), format_bytes(3 * 1024**2)) == (
        "512 B",
        "1.5 KiB",
        "3.0 MiB",
    )
    assert (plural(1, "proxy", "proxies"), plural(2, "proxy", "proxies")) == (
        "1 proxy",
        "2 proxies",
    )


# -- the document ----------------------------------------------------------------------------


def test_document_has_schema_run_summary_and_tests_and_no_secrets():
    secret_record = record(f"t.py::test_token[{JWT}]", "gw0", T0)
    sources = [Source("gw0", records=(secret_record,)), *two_workers()]
    document = build_document(
        run={"env": "local", "url": f"ws://127.0.0.1:1/?token={JWT}", "args": [f"--x={JWT}"]},
        sources=sources,
    )
    text = dumps(document)

    assert JWT not in text
    assert REDACTED in document["run"]["url"]
    parsed = json.loads(text)
    assert parsed["schema_version"] == SCHEMA_VERSION
    assert parsed["run"]["workers"] == ["gw0", "gw1"]
    assert parsed["summary"]["connections_opened"] == 4
    assert len(parsed["tests"]) == 5


def test_redact_tree_cleans_keys_values_and_non_finite_numbers():
    assert redact_tree({JWT: [JWT, float("nan"), 1.5, None]}) == {
        REDACTED: [REDACTED, None, 1.5, None]
    }


@pytest.mark.parametrize(
    ("path", "html"), [("r.html", True), ("R.HTM", True), ("r.json", False), ("r", False)]
)
def test_html_is_chosen_by_the_extension(path, html):
    assert is_html_path(path) is html


# -- the HTML page -----------------------------------------------------------------------------


class _PageScan(HTMLParser):
    """Collects attribute URLs, script elements and the embedded JSON of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.data: list[str] = []
        self.svgs = 0
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.urls.extend(
            value or "" for name, value in attrs if name in ("src", "href", "xlink:href", "action")
        )
        if tag == "svg":
            self.svgs += 1
        if tag == "script":
            self.scripts.append(attributes)
            self._in_data = attributes.get("id") == DATA_ELEMENT_ID

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_data = False

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.data.append(data)


def rendered(sources: list[Source]) -> tuple[dict[str, object], str]:
    document = build_document(
        run={"env": "local", "url": "embedded reference server"}, sources=sources
    )
    return document, render_html(document)


def test_html_page_is_self_contained_and_embeds_the_document():
    document, page = rendered(two_workers())
    scan = _PageScan()
    scan.feed(page)

    assert not re.search(r"https?://", page)  # nothing to fetch, not even a namespace URL
    assert scan.urls == []
    assert scan.scripts == [{"type": "application/json", "id": DATA_ELEMENT_ID}]
    assert json.loads("".join(scan.data)) == document
    assert scan.svgs >= 2  # the handshake histogram and the timeline


def test_test_names_cannot_inject_markup():
    hostile = record("t.py::test_x[</script><script src=http://203.0.113.9/x.js>]", "gw0", T0)
    document, page = rendered([Source("gw0", records=(hostile,))])
    scan = _PageScan()
    scan.feed(page)

    assert scan.urls == []
    assert scan.scripts == [{"type": "application/json", "id": DATA_ELEMENT_ID}]
    assert json.loads("".join(scan.data)) == document


def test_html_page_shows_storm_distributions():
    storm = {
        "kind": "connect",
        "label": "burst",
        "attempted": 3,
        "succeeded": 3,
        "distributions": {
            "connect_ms": {"count": 3, "p50": 2.0, "p95": 2.9, "p99": 3.0, "samples": [1, 2, 3]},
            "round_trip_ms": {"count": 3, "min": 1.0, "p50": 2.0, "p95": 2.9, "p99": 3.0},
        },
    }
    _, page = rendered(
        [Source("main", records=(record("t.py::test_s", "main", T0, storms=(storm,)),))]
    )
    assert "<h3>burst</h3>" in page
    assert 'aria-label="connect_ms"' in page  # a histogram of the samples
    assert 'aria-label="round_trip_ms"' in page  # percentile bars: no samples
    assert "3/3 ok" in page


def test_embedded_json_cannot_close_its_element():
    assert "</" not in embedded_json({"x": "</script><!--"})
    assert json.loads(embedded_json({"x": "</script>&"})) == {"x": "</script>&"}


# -- SVG charts ------------------------------------------------------------------------------


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0.3, 0.9, 3) == [0.4, 0.6, 0.8]


def test_histogram_bins_count_every_value_and_go_log_for_wide_ranges():
    values = [1.0, 1.5, 2.0, 2.5, 3.0, 500.0]
    assert sum(count for *_, count in histogram_bins(values)) == len(values)
    assert Axis.for_values(values).log
    assert not Axis.for_values([1.0, 2.0, 3.0]).log
    assert sum(count for *_, count in histogram_bins([4.0, 4.0])) == 2  # one value, padded


def test_charts_render_with_and_without_data():
    chart = histogram([1.0, 2.0, 3.0], title="h <1>", marks={"p50": 2.0})
    assert chart.startswith("<svg") and "<rect" in chart and "h &lt;1&gt;" in chart
    assert "no samples" in histogram([], title="empty")
    assert "p99" in percentile_bars({"p50": 1.0, "p99": 4.0}, title="p")
    assert "no tests" in timeline([])


def test_timeline_has_a_lane_per_worker_and_a_bar_per_connection():
    sources = two_workers()
    svg = timeline(merge_records(sources))
    assert svg.count('class="test"') == 4
    assert svg.count('class="conn"') == 4
    assert ">gw0<" in svg and ">gw1<" in svg


def test_overlapping_connections_stack_on_rows():
    assert stack_rows([(0, 2), (1, 3), (2.5, 4), (3, 5)], max_rows=8) == [0, 1, 0, 1]
    assert stack_rows([(0, 9)] * 4, max_rows=2) == [0, 1, 1, 1]


def test_a_test_whose_teardown_failed_after_its_body_passed_counts_twice_as_in_pytest() -> None:
    def phase(when: str, outcome: str) -> PhaseResult:
        return PhaseResult(when=when, outcome=outcome, start=1.0, stop=2.0, duration=1.0)

    phases = [phase("setup", "passed"), phase("call", "passed"), phase("teardown", "failed")]
    record = build_record("t.py::test_a", phases, worker="main")
    assert record.outcome == "error"
    assert record.counted_outcomes == ("passed", "error")
    assert TestRecord.from_dict(record.as_dict()) == record
    failed_in_body = build_record(
        "t.py::test_b",
        [phase("setup", "passed"), phase("call", "failed"), phase("teardown", "failed")],
        worker="main",
    )
    assert failed_in_body.counted_outcomes == ("error",)
    summary = summarize([Source(worker="main", records=(record, failed_in_body))])
    assert summary.tests == 2
    assert dict(summary.outcomes) == {"passed": 1, "error": 2}
