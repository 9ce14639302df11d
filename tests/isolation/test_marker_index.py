"""The marker index (`isolation.index`): one pass finds every marker, like a naive search
would; pure, without sockets."""

from __future__ import annotations

import random

import pytest

from pytest_ws_resilience.isolation.index import MarkerIndex


def naive_find(text: str, markers: list[str]) -> set[tuple[int, str]]:
    found = set()
    for marker in markers:
        at = text.find(marker)
        while at >= 0:
            found.add((at, marker))
            at = text.find(marker, at + 1)
    return found


def random_marker(rng: random.Random, text: str, length: int, alphabet: str) -> str:
    """Half the time a piece of ``text`` (so it occurs), else random letters."""
    if rng.random() < 0.5 and len(text) >= length:
        start = rng.randrange(0, len(text) - length + 1)
        return text[start : start + length]
    return "".join(rng.choice(alphabet) for _ in range(length))


@pytest.mark.parametrize("k", [2, 3, 6])
def test_index_finds_every_occurrence_like_a_naive_search(k: int) -> None:
    """Property test (seeded): markers of every sampling tier, repeated k-grams, windows
    that move as they miss, markers discarded and added between scans."""
    rng = random.Random(20240917 + k)
    alphabet = "abc"  # small, so markers overlap, share k-grams and occur often
    moved = 0
    for _ in range(100):
        index: MarkerIndex[int] = MarkerIndex(k)
        markers: dict[str, int] = {}
        for scan in range(12):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
            for n in range(rng.randrange(0, 8)):
                marker = random_marker(rng, text, rng.randrange(k, k + 40), alphabet)
                index.add(marker, scan * 100 + n)
                markers[marker] = scan * 100 + n
            for marker in rng.sample(sorted(markers), min(len(markers), rng.randrange(0, 3))):
                index.discard(marker)
                del markers[marker]
            windows = {m: index._markers[m][2] for m in markers}
            found = index.find(text)
            moved += sum(windows[m] != index._markers[m][2] for m in markers)
            expected = naive_find(text, list(markers))
            assert {(m.start, m.marker) for m in found} == expected
            assert len(found) == len(expected)  # no occurrence twice
            assert all(text[m.start : m.end] == m.marker for m in found)
            assert all(markers[m.marker] == m.value for m in found)
            assert len(index) == len(markers)
            # With a relevance filter: everything when a relevant marker occurs.
            filtered = index.find(text, lambda value: value % 2 == 0)
            if any(markers[marker] % 2 == 0 for _, marker in expected):
                assert {(m.start, m.marker) for m in filtered} == expected
            else:
                assert filtered == [] or {(m.start, m.marker) for m in filtered} == expected
            assert len(index) == len(markers)
    assert moved or k == 6  # the noisy-window moves were exercised (short k-grams miss)


def test_index_rejects_markers_shorter_than_k_and_replaces_values() -> None:
    index: MarkerIndex[str] = MarkerIndex(6)
    assert index.add("short", "x") is False
    assert "short" not in index
    assert index.add("long enough", "first") is True
    assert index.add("long enough", "second") is True
    assert len(index) == 1
    assert [m.value for m in index.find("it is long enough!")] == ["second"]
    index.discard("long enough")
    assert index.find("it is long enough!") == []
    assert len(index) == 0


def test_index_scans_texts_of_exactly_k_characters() -> None:
    index: MarkerIndex[int] = MarkerIndex(6)
    index.add("abcdef", 1)
    assert [m.start for m in index.find("abcdef")] == [0]
    assert index.find("abcdeg") == []


def test_index_rejects_k_below_one() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        MarkerIndex(0)
