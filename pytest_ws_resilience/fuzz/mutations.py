"""Hostile values, as Hypothesis strategies: what a field of a message is replaced with.

Each family is one strategy, in the order the shrinker prefers (Hypothesis shrinks a
``one_of`` towards its first branch, and a number towards its lower bound), so the
minimal failing message names the simplest value that still breaks the server: a lone
surrogate shrinks to ``"\\ud800"``, a nesting to the first depth that fails.

Strategies are built once (``functools.cache``): building one costs Hypothesis more
than drawing from it.

Pure: builds strategies, sends nothing. Hypothesis' own import loads ``socket`` and
``subprocess`` (for its database and its CLI); nothing here uses them
(``tests/layout/test_import_graph.py`` allows exactly that).
"""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import strategies as st

from pytest_ws_resilience.fuzz.frames import RawJson, encode

__all__ = [
    "LONG_STRING_CHARS",
    "MAX_NESTING",
    "MAX_OBJECT_NESTING",
    "MAX_STRING",
    "MAX_STRING_BYTES",
    "UNICODE_SAMPLES",
    "WALKER_NESTING",
    "binary_payloads",
    "deep_nesting",
    "empty_values",
    "hostile_values",
    "huge_numbers",
    "lone_surrogate_strings",
    "long_strings",
    "longest_repeat",
    "nested",
    "nested_within",
    "raw_texts",
    "stretched_depth",
    "unicode_strings",
    "wrong_types",
]

#: Longest string generated, in characters, and in bytes once written: strings go out
#: JSON-escaped (``ensure_ascii``: "\u00e9" is 6 bytes, an astral character 12), and
#: three such mutations in one message stay under 1 MiB, websockets' default frame
#: limit (a server closing with 1009 above its limit is doing its job, not failing).
MAX_STRING = 65_536
MAX_STRING_BYTES = 262_144
#: Deepest nesting generated, in lists and in objects: as deep as `MAX_STRING_BYTES`
#: allows (a list level is 2 bytes, ``{"a":`` and ``}`` are 6). Python's JSON decoder
#: stops at a depth that depends on the version: about 1,000 levels on 3.11, 10,000 on
#: 3.13, and from 3.14 on, where the C stack sets it, about 65,000. Lists reach past
#: all of these; objects reach past 3.13's. With 3,000 levels, nesting could not
#: trip the decoder of Python 3.13 or later.
MAX_NESTING = (MAX_STRING_BYTES - 1) // 2
MAX_OBJECT_NESTING = (MAX_STRING_BYTES - 1) // 6
#: Drawn depths up to here are used as they are: past CPython's recursion limit (1,000
#: frames), where recursive walkers fail. Draws from here to 3,000 (the range before
#: Python 3.13 moved the decoder's limit) stretch linearly up to `MAX_NESTING`, 129
#: levels a step. So every seed draws the same choices as before, and a walker's
#: failure under 2,000 levels is found and shrunk exactly as it was.
WALKER_NESTING = 2000
_DRAWN_MAX = 3000
#: The characters `long_strings` repeats: ASCII, Latin-1, astral, space, backslash.
LONG_STRING_CHARS = ("a", "\u00e9", "\U0001f4a9", " ", "\\")
#: Most digits of a generated integer literal: past Python's 4,300-digit int/str limit.
MAX_DIGITS = 10_000

#: Characters that break naive text handling: direction overrides, zero-width, BOM,
#: combining marks, astral planes, NUL, noncharacters, case-folding surprises.
UNICODE_SAMPLES: tuple[str, ...] = (
    "\u202e",
    "\u200b",
    "\ufeff",
    "e\u0301",
    "\U0001f4a9",
    "\x00",
    "\uffff",
    "\U0010ffff",
    "\u0130",
    "\u00df",
    "\U0001d573",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
)

#: Non-JSON text frames and JSON that trips parsers.
_RAW_TEXTS: tuple[str, ...] = (
    "",
    "{",
    "[1,",
    '{"type":}',
    "null",
    "NaN",
    "\ufeff{}",
    '{"a":1,"a":2}',
    "1e999999",
)


def nested_within(depth: int, container: str) -> RawJson:
    """`nested`, objects held to `MAX_OBJECT_NESTING` (a level of them takes 6 bytes)."""
    return nested(min(depth, MAX_OBJECT_NESTING) if container == "object" else depth, container)


def nested(depth: int, container: str) -> RawJson:
    """``depth`` nested lists (``container`` "list") or objects ("object") around 0."""
    if container == "list":
        text = "[" * depth + "0" + "]" * depth
    else:
        text = '{"a":' * depth + "0" + "}" * depth
    return RawJson(text, f"{depth} nested {container}s")


def _digits(count: int) -> RawJson:
    return RawJson("1" + "0" * (count - 1), f"an integer of {count} digits")


@functools.cache
def wrong_types() -> st.SearchStrategy[Any]:
    """Small values of every JSON type (one of them is the wrong one for the field)."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-10, 10),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
        st.lists(st.integers(-10, 10), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(-10, 10), max_size=2),
    )


@functools.cache
def empty_values() -> st.SearchStrategy[Any]:
    return st.sampled_from(["", [], {}, None, 0])


@functools.cache
def long_strings() -> st.SearchStrategy[str]:
    """One character repeated from 1,000 times to `longest_repeat` (shrinks to the
    shortest)."""
    return st.sampled_from(LONG_STRING_CHARS).flatmap(
        lambda char: st.integers(1_000, longest_repeat(char)).map(lambda count: char * count)
    )


def longest_repeat(char: str) -> int:
    """How often `long_strings` may repeat ``char``: `MAX_STRING` times, or fewer when
    its written form would pass `MAX_STRING_BYTES`."""
    written = len(encode(char)) - 2  # without the quotes
    return min(MAX_STRING, MAX_STRING_BYTES // written)


@functools.cache
def unicode_strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(UNICODE_SAMPLES),
        st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20),
    )


@functools.cache
def lone_surrogate_strings() -> st.SearchStrategy[str]:
    """A string holding one unpaired surrogate (sent as its ``\\uXXXX`` JSON escape)."""
    return st.builds(
        lambda before, surrogate, after: before + surrogate + after,
        st.text(max_size=3),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        st.text(max_size=3),
    )


@functools.cache
def deep_nesting() -> st.SearchStrategy[RawJson]:
    # One drawn integer and one container: the shrinker lowers the integer towards
    # the first depth that fails, whichever container failed.
    depth = st.integers(2, _DRAWN_MAX).map(stretched_depth)
    return st.builds(nested_within, depth, st.sampled_from(["list", "object"]))


def stretched_depth(drawn: int) -> int:
    """The nesting depth a drawn integer stands for: itself up to `WALKER_NESTING`,
    then stretched linearly so that the last draw reaches `MAX_NESTING`."""
    if drawn <= WALKER_NESTING:
        return drawn
    step = (MAX_NESTING - WALKER_NESTING) / (_DRAWN_MAX - WALKER_NESTING)
    return WALKER_NESTING + round((drawn - WALKER_NESTING) * step)


@functools.cache
def huge_numbers() -> st.SearchStrategy[Any]:
    """Numbers past 64 bits, past doubles, and integer literals too long for Python's
    int/str conversion (written as raw JSON: Python's encoder refuses them)."""
    return st.one_of(
        st.sampled_from([2**63, -(2**63) - 1, 2**64, 1e308, -1e308, 5e-324, -0.0]),
        st.integers(min_value=2**64, max_value=10**300),
        st.builds(_digits, st.integers(300, MAX_DIGITS)),
    )


@functools.cache
def hostile_values() -> st.SearchStrategy[Any]:
    """Every family above, simplest first, each drawn as often as the others (a plain
    ``one_of`` would favour the small values of `wrong_types`)."""
    families = (
        wrong_types(),
        empty_values(),
        unicode_strings(),
        lone_surrogate_strings(),
        long_strings(),
        huge_numbers(),
        deep_nesting(),
    )
    return st.integers(0, len(families) - 1).flatmap(lambda index: families[index])


@functools.cache
def raw_texts() -> st.SearchStrategy[str]:
    """Text frames that are not JSON, or JSON that parsers disagree on."""
    return st.one_of(st.sampled_from(_RAW_TEXTS), st.text(max_size=20))


@functools.cache
def binary_payloads() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from([b"", b"\x00", b"\xff\xfe", b"{}", b'{"type":"ping"}']),
        st.binary(max_size=64),
    )
