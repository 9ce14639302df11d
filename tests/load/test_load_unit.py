"""Pure logic of the load tools: thresholds, `StormResult` text and JSON, error kinds,
sample thinning, the RSS reader and the benchmark replay clock. No sockets."""

from __future__ import annotations

import gc
import json
import math
import mmap
import re

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from pytest_ws_resilience.errors import (
    Attempt,
    StormThresholdError,
    WsAuthError,
    WsConnectError,
    WsConnectionClosedError,
    WsTimeoutError,
)
from pytest_ws_resilience.load.bench import ReplayTimer
from pytest_ws_resilience.load.collector import collector_paused
from pytest_ws_resilience.load.error_kinds import ERROR_KINDS, error_kind
from pytest_ws_resilience.load.results import MAX_SAMPLES, StormResult, thin_samples
from pytest_ws_resilience.load.rss import current_rss_bytes, rss_source
from pytest_ws_resilience.load.thresholds import (
    METRICS,
    error_count_breach,
    error_rate_breach,
    percentile_breaches,
)
from pytest_ws_resilience.stats import Distribution

pytestmark = pytest.mark.websocket_unit

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLWEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def result(**fields: object) -> StormResult:
    base: dict[str, object] = {
        "attempted": 100,
        "succeeded": 100,
        "connect_ms": [float(v) for v in range(1, 101)],  # p50 50.5, p95 95.05, p99 99.01
    }
    base.update(fields)
    return StormResult("storm", "connect n=100 all at once", **base)  # type: ignore[arg-type]


# -- thresholds --------------------------------------------------------------------------


def test_percentile_threshold_met_passes_and_exceeded_names_metric_and_figures():
    dists = {m: Distribution.of([]) for m in METRICS}
    dists["connect_ms"] = Distribution.of(range(1, 101))
    assert percentile_breaches(dists, "p95", {"connect_ms": 96}) == []
    [breach] = percentile_breaches(dists, "p95", {"connect_ms": 90})
    assert str(breach) == "connect_ms p95 = 95.0 ms > 90 ms"


def test_threshold_on_a_metric_without_samples_is_a_breach_not_a_pass():
    dists = {m: Distribution.of([]) for m in METRICS}
    [breach] = percentile_breaches(dists, "p99", {"round_trip_ms": 1000})
    assert breach.observed is None
    assert str(breach) == "round_trip_ms p99 <= 1000 ms: no samples"


@pytest.mark.parametrize(
    ("stat", "limits", "message"),
    [
        ("p95", {"conect_ms": 1}, "unknown metric 'conect_ms'; valid: connect_ms, "),
        ("p90", {"connect_ms": 1}, "unknown statistic 'p90'; valid: p50, p95, p99"),
        ("p95", {}, "assert_p95() needs at least one limit"),
        ("p95", {"connect_ms": -1}, "threshold connect_ms must be a finite number >= 0, got -1"),
        ("p95", {"connect_ms": "fast"}, "threshold connect_ms must be a finite number >= 0"),
        ("p95", {"connect_ms": math.nan}, "threshold connect_ms must be a finite number >= 0"),
        ("p99", {"round_trip_ms": math.inf}, "threshold round_trip_ms must be a finite number"),
    ],
)
def test_bad_threshold_is_a_one_line_error_naming_the_problem(stat, limits, message):
    dists = {m: Distribution.of([1.0]) for m in METRICS}
    with pytest.raises(ValueError, match="^" + re.escape(message)) as info:
        percentile_breaches(dists, stat, limits)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("limit", [math.nan, math.inf, -math.inf])
def test_a_non_finite_error_threshold_is_refused_not_passed(limit):
    # Every comparison with NaN is False: a NaN limit could never be breached.
    with pytest.raises(ValueError, match=r"^threshold max must be a finite number >= 0"):
        error_rate_breach(100, 100, max_rate=limit)
    with pytest.raises(ValueError, match=r"^threshold max must be a finite number >= 0"):
        error_count_breach(100, max_count=limit)  # type: ignore[arg-type]


def test_storm_result_thresholds_refuse_nan():
    result = StormResult("storm", "s", attempted=2, succeeded=1, connect_ms=[5000.0])
    result.record_error("timeout", "late")
    with pytest.raises(ValueError, match="finite"):
        result.assert_p95(connect_ms=math.nan)
    with pytest.raises(ValueError, match="finite"):
        result.assert_error_rate(max=math.nan)


def test_a_storm_that_sent_messages_and_saw_no_reply_fails_its_error_thresholds():
    result = StormResult("storm", "quiet", attempted=2, succeeded=2, messages_sent=2)
    finding = result.nothing_checked
    assert finding is not None and finding.area == "load"
    assert "2 message(s) sent and no reply seen" in str(finding)
    assert "NO REPLY SEEN" in result.describe()
    with pytest.raises(StormThresholdError, match="no reply seen"):
        result.assert_errors(max=5)
    with pytest.raises(StormThresholdError, match="no reply seen"):
        result.assert_error_rate(max=1.0)
    answered = StormResult("storm", "ok", attempted=1, succeeded=1)
    answered.messages_sent, answered.replies_received = 1, 1
    assert answered.nothing_checked is None
    answered.assert_errors(max=0)


def test_error_count_and_rate_breaches():
    assert error_count_breach(0, max_count=0) is None
    assert str(error_count_breach(3, max_count=0)) == "errors = 3 > max 0"
    assert error_rate_breach(1, 100, max_rate=0.01) is None
    assert str(error_rate_breach(2, 100, max_rate=0.01)) == "error rate = 2.00% > max 1.00%"
    assert "no connection attempted" in str(error_rate_breach(0, 0, max_rate=0.5))
    with pytest.raises(ValueError, match=r"fraction 0\.\.1"):
        error_rate_breach(0, 10, max_rate=5)


# -- StormResult ---------------------------------------------------------------------------


def test_assert_percentiles_pass_within_limits():
    r = result()
    r.assert_p50(connect_ms=51)
    r.assert_p95(connect_ms=96)
    r.assert_p99(connect_ms=100)
    r.assert_errors(max=0)
    r.assert_error_rate(max=0.0)


def test_threshold_failure_prints_every_distribution_and_the_errors():
    r = result(
        succeeded=98,
        first_message_ms=[2.0, 4.0],
        round_trip_ms=[1.0, 3.0, 5.0],
        rss_growth_bytes=3 * 1024 * 1024,
        duration_s=1.25,
    )
    r.record_error("refused", "storm#7:user-a: connection refused")
    r.record_error("refused", "storm#8:user-b: connection refused")
    r.record_error("auth", f"every auth method was rejected, token {TOKEN}")
    with pytest.raises(StormThresholdError) as info:
        r.assert_p95(connect_ms=10, round_trip_ms=100)
    text = str(info.value)
    assert isinstance(info.value, AssertionError)
    lines = text.splitlines()
    assert lines[0] == "storm 'connect n=100 all at once' missed its thresholds:"
    assert lines[1] == "  connect_ms p95 = 95.0 ms > 10 ms"
    assert "98/100 succeeded in 1.250 s, RSS growth +3.0 MiB (31.3 KiB per connection)" in lines[2]
    assert "  connect_ms        n=100 min=1.0 p50=50.5 p95=95.0 p99=99.0 max=100.0 ms" in lines
    assert "  first_message_ms  n=2 min=2.0 p50=3.0 p95=3.9 p99=4.0 max=4.0 ms" in lines
    assert "  round_trip_ms     n=3 min=1.0 p50=3.0 p95=4.8 p99=5.0 max=5.0 ms" in lines
    assert "  errors: refused=2, auth=1" in lines
    assert "    refused, first: storm#7:user-a: connection refused" in lines
    assert TOKEN not in text  # error examples are redacted


def test_memory_per_connection_is_the_growth_per_successful_connection():
    r = result(succeeded=4, rss_growth_bytes=40 * 1024)
    assert r.rss_per_connection_bytes == 10 * 1024
    assert "RSS growth +0.0 MiB (10.0 KiB per connection)" in r.describe()
    assert r.as_dict()["rss_per_connection_bytes"] == 10 * 1024
    # Unknown growth, or nothing held open: no figure rather than a made-up one.
    assert result(succeeded=4).rss_per_connection_bytes is None
    assert result(succeeded=0, rss_growth_bytes=4096).rss_per_connection_bytes is None
    assert "per connection" not in result(succeeded=0, rss_growth_bytes=4096).describe()


def test_error_thresholds_fail_with_the_counts():
    r = result(succeeded=95)
    for _ in range(5):
        r.record_error("timeout", "no pong")
    with pytest.raises(StormThresholdError, match=r"errors = 5 > max 0"):
        r.assert_errors()
    r.assert_errors(max=5)
    with pytest.raises(StormThresholdError, match=r"error rate = 5.00% > max 1.00%"):
        r.assert_error_rate()
    assert r.error_count == 5
    assert r.error_rate == 0.05


def test_unknown_error_kind_and_storm_kind_are_rejected():
    with pytest.raises(ValueError, match="unknown error kind 'flaky'"):
        result().record_error("flaky", "x")
    with pytest.raises(ValueError, match="unknown storm kind 'swarm'"):
        StormResult("swarm", "x")


def test_as_dict_has_exactly_the_report_shape_and_is_json_ready():
    r = result(round_trip_ms=[0.12345, 2.0], rss_growth_bytes=4096)
    r.record_error("reset", "dropped")
    data = json.loads(json.dumps(r.as_dict()))
    assert set(data) == {
        "kind",
        "label",
        "attempted",
        "succeeded",
        "errors",
        "rss_growth_bytes",
        "rss_per_connection_bytes",
        "distributions",
        "server_growth",
        "server_growth_note",
        "server_growth_text",
        "contracts_checked",
        "steps",
    }
    assert data["kind"] == "storm"
    assert (data["contracts_checked"], data["steps"]) == (0, {})
    assert (data["server_growth"], data["server_growth_note"], data["server_growth_text"]) == (
        None,
        None,
        None,
    )
    assert data["errors"] == {**dict.fromkeys(ERROR_KINDS, 0), "reset": 1}
    assert set(data["distributions"]) == set(METRICS)
    connect = data["distributions"]["connect_ms"]
    assert set(connect) == {"count", "min", "p50", "p95", "p99", "max", "mean", "samples"}
    assert connect["count"] == 100 and len(connect["samples"]) == 100
    assert data["distributions"]["round_trip_ms"]["samples"] == [0.123, 2.0]
    assert data["distributions"]["first_message_ms"] == {
        "count": 0,
        "min": None,
        "p50": None,
        "p95": None,
        "p99": None,
        "max": None,
        "mean": None,
        "samples": [],
    }


def test_as_dict_thins_samples_but_keeps_the_full_distribution():
    r = result(attempted=10_000, succeeded=10_000, connect_ms=[float(v) for v in range(10_000)])
    connect = r.as_dict()["distributions"]["connect_ms"]
    assert connect["count"] == 10_000 and connect["max"] == 9999.0
    assert len(connect["samples"]) == MAX_SAMPLES
    assert connect["samples"][:3] == [0.0, 5.0, 10.0]  # evenly spaced, in order


def test_thin_samples_keeps_short_lists_whole():
    assert thin_samples([1.0, 2.0], limit=5) == [1.0, 2.0]
    assert thin_samples([float(v) for v in range(10)], limit=5) == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_open_window_is_the_last_open_since_the_start():
    assert result().open_window_s is None
    assert result(opened_s=[0.2, 0.9, 0.5]).open_window_s == 0.9


# -- error kinds ---------------------------------------------------------------------------


def _invalid_status(status: int) -> InvalidStatus:
    return InvalidStatus(Response(status, "x", Headers()))


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (WsAuthError("rejected", attempts=[Attempt("query", "HTTP 401", 401)]), "auth"),
        (WsTimeoutError("handshake slow"), "timeout"),
        (TimeoutError(), "timeout"),
        (ConnectionRefusedError(), "refused"),
        (ConnectionResetError(), "reset"),
        (BrokenPipeError(), "reset"),
        (WsConnectionClosedError("gone", code=1008), "closed"),
        (WsConnectionClosedError("dropped", code=1006), "reset"),
        (WsConnectionClosedError("dropped", code=None), "reset"),
        (ConnectionClosedOK(Close(1000, ""), Close(1000, ""), True), "closed"),
        (ConnectionClosedError(None, None, None), "reset"),
        (EOFError(), "closed"),
        (_invalid_status(403), "auth"),
        (_invalid_status(500), "other"),
        (WsConnectError("x", attempts=[Attempt("subprotocol", "connection refused")]), "refused"),
        (WsConnectError("x", attempts=[Attempt("subprotocol", "connection reset")]), "reset"),
        (
            WsConnectError(
                "x", attempts=[Attempt("query", "connection closed during the handshake")]
            ),
            "closed",
        ),
        (WsConnectError("x", attempts=[Attempt("query", "HTTP 503", 503)]), "other"),
        (WsConnectError("x"), "other"),
        (ValueError("bug"), "other"),
    ],
)
def test_error_kind_of_each_failure(exc, kind):
    assert error_kind(exc) == kind
    assert kind in ERROR_KINDS


# -- rss, replay clock ---------------------------------------------------------------------


def test_rss_is_read_from_the_running_process():
    rss = current_rss_bytes()
    assert rss_source() in ("statm", "getrusage")
    assert rss is not None and rss > 1024 * 1024  # a Python process holds megabytes
    # Fresh anonymous pages (a bytearray may reuse memory the allocator kept resident
    # after an earlier test freed it, and then RSS does not move).
    grown = mmap.mmap(-1, 32 * 1024 * 1024)
    try:
        for page in range(0, len(grown), mmap.PAGESIZE):
            grown[page] = 1  # touch every page: resident now
        after = current_rss_bytes()
        assert after is not None and after - rss >= 16 * 1024 * 1024
    finally:
        grown.close()


def test_replay_timer_gives_each_round_its_measured_duration():
    timer = ReplayTimer()
    timer.load([0.5, 0.25])
    rounds = []
    for _ in range(2):
        start = timer()
        rounds.append(timer() - start)
    assert rounds == [0.5, 0.25]
    assert "perf_counter" in timer.__name__
    timer()  # a third round starts...
    with pytest.raises(RuntimeError, match="use either benchmark or ws_benchmark"):
        timer()  # ...but nothing was measured for it


# -- the collector's pause ---------------------------------------------------------------


def test_the_collector_pause_nests_and_restores_what_it_found():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # a second storm in the same loop
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer storm is still running
    assert gc.isenabled()


def test_the_collector_pause_keeps_a_users_own_disable():
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the user turned it off: it stays off
    finally:
        gc.enable()


def test_the_collector_comes_back_when_the_storm_raises():
    with pytest.raises(RuntimeError, match="boom"), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
