"""Unit tests of the toxic timing math (`chaos.timing`): rolls, latency, pacing, slicing."""

from __future__ import annotations

import random

import pytest

from pytest_ws_resilience.chaos.seeds import derive_rng
from pytest_ws_resilience.chaos.timing import (
    BandwidthPacer,
    Piece,
    StreamShaper,
    latency_release,
    slice_sizes,
    toxicity_draw,
)
from pytest_ws_resilience.chaos.toxics import Toxic, build_toxic

# -- the toxicity roll ---------------------------------------------------------------------


def test_toxicity_draw_is_one_fixed_draw_per_connection_and_toxic() -> None:
    draws = [toxicity_draw(7, "latency_downstream", n) for n in range(1, 201)]
    assert draws == [toxicity_draw(7, "latency_downstream", n) for n in range(1, 201)]
    assert all(0.0 <= d < 1.0 for d in draws)
    enabled = sum(d < 0.5 for d in draws)
    assert 60 < enabled < 140  # about half, from a fixed seed


# -- latency and jitter ----------------------------------------------------------------------


def test_latency_release_adds_latency_without_jitter_draws() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    assert latency_release(10.0, 50, 0, rng, float("-inf")) == pytest.approx(10.05)
    assert rng.getstate() == state  # no jitter: no draw, so other draws do not shift


def test_jitter_stays_within_bounds_and_is_seeded() -> None:
    def delays(seed: int) -> list[float]:
        rng = derive_rng(seed, "jitter")
        # Arrivals far apart, so ordering never clamps a release.
        return [latency_release(n * 1.0, 20, 10, rng, float("-inf")) - n for n in range(500)]

    values = delays(5)
    assert all(0.010 <= d <= 0.030 for d in values)
    assert min(values) < 0.012 and max(values) > 0.028  # the whole range is used
    assert values == delays(5)
    assert values != delays(6)


def test_jitter_never_reorders_and_never_goes_below_arrival() -> None:
    rng = random.Random(3)
    previous = float("-inf")
    for n in range(1000):
        arrival = n * 0.001
        release = latency_release(arrival, 5, 40, rng, previous)
        assert release >= previous
        assert release >= arrival
        previous = release


# -- bandwidth -------------------------------------------------------------------------------


def test_bandwidth_pacer_holds_the_rate_in_kb_of_1000_bytes() -> None:
    pacer = BandwidthPacer()
    steps = pacer.pace(0.0, 64 * 1024, rate_kbs=32)
    assert steps[-1][0] == 65536
    assert steps[-1][1] == pytest.approx(65536 / 32000)
    offsets = [offset for offset, _ in steps]
    assert offsets == sorted(offsets)
    # each step is released when its last byte has been sent at the rate
    assert all(at == pytest.approx(offset / 32000) for offset, at in steps)


def test_bandwidth_pacer_queues_back_to_back_chunks_and_earns_no_burst_credit() -> None:
    pacer = BandwidthPacer()
    first = pacer.pace(0.0, 1000, rate_kbs=10)  # 0.1 s of transmission
    second = pacer.pace(0.05, 1000, rate_kbs=10)  # arrives while the first still sends
    assert first[-1][1] == pytest.approx(0.1)
    assert second[-1][1] == pytest.approx(0.2)
    later = pacer.pace(10.0, 1000, rate_kbs=10)  # after idling: starts at its arrival
    assert later[-1][1] == pytest.approx(10.1)


def test_bandwidth_zero_means_unlimited() -> None:
    assert BandwidthPacer().pace(1.0, 5000, rate_kbs=0) == [(5000, 1.0)]


# -- slicer ----------------------------------------------------------------------------------


def test_slice_sizes_add_up_and_stay_within_variation() -> None:
    rng = random.Random(9)
    for total in (1, 99, 1000, 4097):
        sizes = slice_sizes(total, 100, 30, rng)
        assert sum(sizes) == total
        assert all(1 <= s <= 130 for s in sizes)
        assert all(s >= 70 for s in sizes[:-1])


def test_exact_slicer_does_not_draw() -> None:
    rng = random.Random(2)
    state = rng.getstate()
    assert slice_sizes(10, 3, 0, rng) == [3, 3, 3, 1]
    assert rng.getstate() == state


# -- the shaper: toxics applied in order -----------------------------------------------------


def _shaper() -> StreamShaper:
    return StreamShaper(lambda toxic: derive_rng(1, toxic.name))


def _toxic(kind: str, key: int, **attributes: float) -> Toxic:
    return build_toxic(kind, attributes=attributes, key=key)


def test_shaper_without_toxics_releases_at_arrival() -> None:
    shaped = _shaper().shape(2.0, b"abc", [])
    assert shaped.pieces == [Piece(2.0, b"abc")]
    assert not shaped.close and shaped.dropped == 0


def test_shaper_applies_latency_then_slicer_in_insertion_order() -> None:
    toxics = [_toxic("latency", 1, latency=100), _toxic("slicer", 2, average_size=2, delay=1000)]
    shaped = _shaper().shape(1.0, b"abcde", toxics)
    assert [p.data for p in shaped.pieces] == [b"ab", b"cd", b"e"]
    assert [p.at for p in shaped.pieces] == pytest.approx([1.1, 1.101, 1.102])


def test_shaper_latency_is_deadline_based_not_serial() -> None:
    shaper = _shaper()
    toxics = [_toxic("latency", 1, latency=50)]
    releases = [shaper.shape(n * 0.001, b"x", toxics).pieces[0].at for n in range(100)]
    # 100 chunks 1 ms apart leave 1 ms apart, 50 ms later: latency does not cap throughput.
    assert releases[0] == pytest.approx(0.05)
    assert releases[-1] == pytest.approx(0.149)


def test_shaper_timeout_drops_everything() -> None:
    shaped = _shaper().shape(0.0, b"abc", [_toxic("timeout", 1)])
    assert shaped.pieces == [] and shaped.dropped == 3 and not shaped.close


def test_shaper_limit_data_truncates_then_asks_to_close() -> None:
    shaper = _shaper()
    toxics = [_toxic("limit_data", 1, bytes=5)]
    first = shaper.shape(0.0, b"abc", toxics)
    assert [p.data for p in first.pieces] == [b"abc"] and not first.close
    second = shaper.shape(0.0, b"defg", toxics)
    assert [p.data for p in second.pieces] == [b"de"]
    assert second.close and second.dropped == 2


def test_shaper_state_follows_the_toxic_key() -> None:
    shaper = _shaper()
    shaper.shape(0.0, b"abcde", [_toxic("limit_data", 1, bytes=5)])
    shaper.forget({2})
    # A new toxic (new key) of the same name counts from zero.
    again = shaper.shape(0.0, b"abc", [_toxic("limit_data", 2, bytes=5)])
    assert [p.data for p in again.pieces] == [b"abc"] and not again.close


def test_shaper_bandwidth_splits_a_large_chunk_into_paced_pieces() -> None:
    shaped = _shaper().shape(0.0, bytes(10_000), [_toxic("bandwidth", 1, rate=100)])
    assert b"".join(p.data for p in shaped.pieces) == bytes(10_000)
    assert len(shaped.pieces) == 10  # 10 ms quanta of 1000 bytes at 100 KB/s
    assert shaped.pieces[-1].at == pytest.approx(0.1)
