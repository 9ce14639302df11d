"""ws_storm and ws_benchmark as users use them (pytester runs against the embedded
server): results kept for the reports, thresholds that fail with the distribution,
isolation over storm clients, and pytest-benchmark's table, JSON, disable, skip and
xdist behaviour for coroutines."""

from __future__ import annotations

import json

import pytest
from storm_records import read_storms, record_storms

pytestmark = pytest.mark.websocket_integration


def test_ws_storm_results_are_kept_for_the_reports(ws_pytester, tmp_path):
    record = tmp_path / "storms.jsonl"
    record_storms(ws_pytester, record)
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_storm(ws_storm):
            result = await ws_storm.connect(20, message={"type": "ping"}, reply={"type": "pong"})
            result.assert_errors(max=0)
            result.assert_p99(connect_ms=10_000, round_trip_ms=10_000)
            cycles = await ws_storm.cycles(10, concurrency=3)
            assert cycles.succeeded == 10
            burst = await ws_storm.burst(2, 20)
            assert burst.replies_received == 40
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)
    [row] = read_storms(record)
    assert [s["kind"] for s in row["storms"]] == ["storm", "cycles", "burst"]
    storm = row["storms"][0]
    assert (storm["attempted"], storm["succeeded"]) == (20, 20)
    assert storm["distributions"]["round_trip_ms"]["count"] == 20
    assert len(storm["distributions"]["connect_ms"]["samples"]) == 20
    assert sum(storm["errors"].values()) == 0


def test_a_missed_threshold_fails_with_the_full_distribution(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_too_strict(ws_storm):
            result = await ws_storm.connect(12)
            result.assert_p95(connect_ms=0)
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*StormThresholdError: storm 'connect n=12 all at once' missed its thresholds:",
            "*connect_ms p95 = * ms > 0 ms",
            "*connect n=12 all at once: 12/12 succeeded in * s, RSS growth *",
            "*connect_ms        n=12 min=* p50=* p95=* p99=* max=* ms",
            "*first_message_ms  n=0",
            "*round_trip_ms     n=0",
            "*errors: none",
        ]
    )


def test_expired_tokens_storm_counts_auth_errors_and_fails_the_error_threshold(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_expired(ws_storm, ws_tokens):
            result = await ws_storm.connect(5, token=ws_tokens.expired)
            assert result.errors["auth"] == 5
            result.assert_error_rate(max=0.01)
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*error rate = 100.00% > max 1.00%", "*errors: auth=5"])
    assert "eyJ" not in result.stdout.str()  # tokens never printed


def test_storm_clients_are_watched_by_ws_isolation(ws_pytester):
    ws_pytester.makepyfile(
        """
        import asyncio
        import pytest

        async def chat(clients):
            for client in clients:
                text = f"note of {client.user.id}"
                await client.send_json({"type": "user_message", "text": text})
            await asyncio.gather(*(c.expect(type="agent_completed") for c in clients))

        @pytest.mark.asyncio
        async def test_clean(ws_storm, ws_isolation):
            result = await ws_storm.connect(10, hold=True)
            await chat(result.clients)
            assert ws_isolation.violations == [] and ws_isolation.checks > 0

        @pytest.mark.asyncio
        async def test_leaky(ws_storm, ws_isolation, ws_server):
            result = await ws_storm.connect(3, hold=True)
            with ws_server.faults("leak"):
                await chat(result.clients)
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_leaky*", "*received*"])


# -- ws_benchmark ------------------------------------------------------------------------

BENCH_TEST = """
import pytest

@pytest.mark.asyncio
async def test_async_round_trip(ws_client, ws_benchmark):
    async def round_trip():
        with open({count!r}, "a") as fh:
            fh.write("x")
        await ws_client.send_json({{"type": "ping"}})
        return await ws_client.expect(type="pong")

    pong = await ws_benchmark(round_trip{rounds})
    assert pong["type"] == "pong"
"""


def write_bench(pytester, tmp_path, rounds: str = ", rounds=7"):
    count = tmp_path / "calls"
    pytester.makepyfile(BENCH_TEST.format(count=str(count), rounds=rounds))
    return count


def test_async_benchmark_shows_in_the_pytest_benchmark_table_and_json(ws_pytester, tmp_path):
    count = write_bench(ws_pytester, tmp_path)
    out = tmp_path / "bench.json"
    result = ws_pytester.runpytest("-p", "ws_resilience", f"--benchmark-json={out}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*benchmark: 1 tests*", "Name (time in *", "test_async_round_trip *"]
    )
    [bench] = json.loads(out.read_text())["benchmarks"]
    assert bench["name"] == "test_async_round_trip"
    assert bench["stats"]["rounds"] == 7
    assert bench["stats"]["min"] > 0  # real durations of real round trips
    assert "ws_benchmark" in bench["options"]["timer"]
    assert len(count.read_text()) == 7


def test_async_benchmark_rounds_follow_pytest_benchmark_options(ws_pytester, tmp_path):
    count = write_bench(ws_pytester, tmp_path, rounds=", warmup_rounds=2")
    out = tmp_path / "bench.json"
    result = ws_pytester.runpytest(
        "-p",
        "ws_resilience",
        "--benchmark-min-rounds=4",
        "--benchmark-max-time=0.000001",
        f"--benchmark-json={out}",
    )
    result.assert_outcomes(passed=1)
    [bench] = json.loads(out.read_text())["benchmarks"]
    assert bench["stats"]["rounds"] == 4  # min rounds: max time is spent after one
    assert len(count.read_text()) == 2 + 4  # warmup rounds are run, not timed


def test_benchmark_disable_runs_the_coroutine_once_untimed(ws_pytester, tmp_path):
    count = write_bench(ws_pytester, tmp_path)
    result = ws_pytester.runpytest("-p", "ws_resilience", "--benchmark-disable", "-rP")
    result.assert_outcomes(passed=1)
    assert len(count.read_text()) == 1
    assert "Name (time in" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*ws_benchmark: pytest-benchmark is disabled (--benchmark-disable)*"]
    )


def test_benchmark_skip_skips_async_benchmarks(ws_pytester, tmp_path):
    count = write_bench(ws_pytester, tmp_path)
    ws_pytester.runpytest("-p", "ws_resilience", "--benchmark-skip").assert_outcomes(skipped=1)
    assert not count.exists()


def test_under_xdist_the_coroutine_runs_once_and_a_warning_says_so(ws_pytester, tmp_path):
    pytest.importorskip("xdist")
    count = write_bench(ws_pytester, tmp_path)
    result = ws_pytester.runpytest_subprocess("-p", "ws_resilience", "-n", "2", "--dist=loadgroup")
    result.assert_outcomes(passed=1)
    assert len(count.read_text()) == 1
    result.stdout.fnmatch_lines(
        ["*ws_benchmark: pytest-benchmark is disabled (pytest-xdist is active)*ran once*"]
    )
    assert "Name (time in" not in result.stdout.str()


def test_benchmark_and_ws_benchmark_in_one_test_is_a_clear_error(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_both(ws_benchmark, benchmark):
            benchmark(lambda: None)
        """
    )
    result = ws_pytester.runpytest("-p", "ws_resilience")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*use either benchmark or ws_benchmark, not both*"])


def test_ws_storm_in_the_session_loop(pytester):
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
        """
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", [3, 4])
        async def test_storm(ws_storm, n):
            result = await ws_storm.connect(n, hold=True)
            assert len(result.clients) == n
        """
    )
    pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=2)
