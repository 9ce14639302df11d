"""The pure part of a server's growth: samples, growth per 1,000 cycles, when a
server has settled, the thresholds and their messages (plain data, no server)."""

from __future__ import annotations

import math

import pytest

from pytest_ws_resilience.errors import StormThresholdError
from pytest_ws_resilience.load.results import StormResult
from pytest_ws_resilience.load.thresholds import growth_breaches
from pytest_ws_resilience.servers.growth import (
    RESOURCE_METRICS,
    ResourceSample,
    ServerGrowth,
    still_falling,
)

MIB = 1024 * 1024


def sample(
    rss_mib: float | None = 40.0,
    fds: int | None = 10,
    threads: int | None = 2,
    sockets: int | None = 1,
    note: str = "",
) -> ResourceSample:
    rss = None if rss_mib is None else int(rss_mib * MIB)
    return ResourceSample(rss, fds, threads, sockets, processes=1, source="pid 1", note=note)


def test_growth_is_scaled_to_1000_cycles() -> None:
    growth = ServerGrowth(sample(40, 10), sample(52.5, 210), cycles=200)
    assert growth.change("fds") == 200
    assert growth.per_thousand("fds") == 1000
    assert growth.per_thousand("rss_mib") == pytest.approx(62.5)
    assert growth.per_1000 == {
        "rss_mib": pytest.approx(62.5),
        "fds": 1000,
        "threads": 0,
        "sockets": 0,
    }


def test_a_figure_unknown_in_either_sample_has_no_growth() -> None:
    growth = ServerGrowth(sample(fds=None), sample(fds=12), cycles=10)
    assert growth.per_thousand("fds") is None
    assert "fds unknown" in growth.describe()
    assert "fds" not in growth.short()


def test_a_growth_over_no_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one cycle"):
        ServerGrowth(sample(), sample(), cycles=0)


def test_the_description_names_the_growth_and_the_counts() -> None:
    growth = ServerGrowth(sample(40, 7), sample(50, 207, note="x denied"), cycles=200)
    text = growth.describe()
    assert text.startswith("server growth per 1,000 cycles: RSS +50.0 MiB, fds +1000,")
    assert "over 200 cycles" in text and "fds 7 -> 207" in text and "x denied" in text
    assert growth.short() == "RSS +50.0 MiB, fds +1000, threads +0, TCP sockets +0"


def test_a_sample_says_what_it_could_not_read() -> None:
    text = sample(rss_mib=None, note="rss not readable").describe()
    assert text.startswith("RSS unknown, 10 fds, 2 threads, 1 TCP sockets (pid 1, 1 process;")
    assert text.endswith("rss not readable)")
    with pytest.raises(ValueError, match="unknown metric 'memory'"):
        sample().value("memory")


def test_a_server_is_still_falling_while_fds_or_sockets_drop() -> None:
    assert still_falling(sample(fds=12), sample(fds=10))
    assert still_falling(sample(sockets=5), sample(sockets=1))
    assert not still_falling(sample(fds=10), sample(fds=10))
    assert not still_falling(sample(fds=10), sample(fds=11))
    assert not still_falling(sample(fds=None), sample(fds=3))


def test_growth_breaches_name_the_metric_its_growth_and_the_limit() -> None:
    per_1000 = {"rss_mib": 62.5, "fds": 1000.0, "threads": 0.0, "sockets": None}
    [fds] = growth_breaches(per_1000, {"fds": 50, "threads": 0})
    assert str(fds) == "server fds growth per 1,000 cycles = +1000.0 > max 50"
    [rss] = growth_breaches(per_1000, {"rss_mib": 20, "fds": None})
    assert str(rss) == "server rss_mib growth per 1,000 cycles = +62.5 MiB > max 20 MiB"
    [unread] = growth_breaches(per_1000, {"sockets": 5})
    assert str(unread) == "server sockets growth per 1,000 cycles <= 5: not measured"
    assert growth_breaches(per_1000, {"fds": 1000}) == []


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({}, "needs at least one limit"),
        ({"fds": None}, "needs at least one limit"),
        ({"files": 3}, "unknown metric 'files'"),
        ({"fds": -1}, "must be a finite number >= 0"),
        ({"fds": math.nan}, "must be a finite number >= 0"),
    ],
)
def test_bad_growth_limits_are_one_line_errors(limits: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        growth_breaches(dict.fromkeys(RESOURCE_METRICS, 0.0), limits)


def cycles_result(growth: ServerGrowth | None, note: str | None = None) -> StormResult:
    result = StormResult("cycles", "cycles n=200", attempted=200, succeeded=200)
    result.server_growth, result.server_growth_note = growth, note
    return result


def test_assert_server_growth_fails_with_the_growth_and_passes_within_limits() -> None:
    result = cycles_result(ServerGrowth(sample(40, 7), sample(41, 207), cycles=200))
    with pytest.raises(StormThresholdError) as caught:
        result.assert_server_growth(fds=50, rss_mib=100)
    message = str(caught.value)
    assert "server fds growth per 1,000 cycles = +1000.0 > max 50" in message
    assert "rss_mib" not in message.splitlines()[1]  # within its limit: not a breach
    assert "server growth per 1,000 cycles: RSS +5.0 MiB, fds +1000" in message
    result.assert_server_growth(fds=1000, threads=0, sockets=0)


def test_assert_server_growth_with_nothing_measured_fails_with_the_reason() -> None:
    result = cycles_result(None, "the embedded reference server runs inside the test process")
    with pytest.raises(StormThresholdError) as caught:
        result.assert_server_growth(fds=10)
    assert str(caught.value) == (
        "cycles 'cycles n=200': server growth was not measured, nothing to assert: "
        "the embedded reference server runs inside the test process"
    )
    assert "not measured (the embedded" in repr(result)
    assert "  server growth: not measured (the embedded" in result.describe()
    with pytest.raises(ValueError, match="needs at least one limit"):
        result.assert_server_growth()
    storm = StormResult("storm", "connect n=5", attempted=5, succeeded=5)
    with pytest.raises(StormThresholdError, match="a storm run does not measure it"):
        storm.assert_server_growth(rss_mib=1)


def test_the_growth_is_in_the_repr_and_the_reports_dict() -> None:
    result = cycles_result(ServerGrowth(sample(40, 7), sample(40, 7), cycles=200))
    assert repr(result).endswith(
        "server growth per 1,000 cycles: RSS +0.0 MiB, fds +0, threads +0, TCP sockets +0)"
    )
    data = result.as_dict()
    assert data["server_growth"]["per_1000"]["fds"] == 0
    assert data["server_growth"]["before"]["source"] == "pid 1"
    assert data["server_growth_note"] is None
