"""JSON this interpreter cannot decode, for tests that need it: an integer past its
digit limit, and nesting past its decoder's depth. The depth depends on the Python
version (about 1,000 lists on 3.11, 10,000 on 3.13, about 65,000 from 3.14 on, where
the C stack sets it), so no test hard-codes it."""

from __future__ import annotations

import functools
import json
import sys

__all__ = ["decoder_depth_limit", "nested_lists", "undecodable_integer"]

#: Searched up to this depth: past every CPython's decoder with a default stack.
_CEILING = 1_000_000


def undecodable_integer(past: int = 1) -> str:
    """An integer literal ``past`` digits longer than the int/str digit limit allows."""
    digits = sys.get_int_max_str_digits()
    assert digits, "int/str digits are unlimited here (PYTHONINTMAXSTRDIGITS=0)"
    return "1" * (digits + past)


def nested_lists(depth: int) -> str:
    """``depth`` nested empty lists, as JSON text."""
    return "[" * depth + "]" * depth


def decoder_depth_limit() -> int:
    """The deepest nesting of lists ``json.loads`` decodes here (a binary search).

    Here: from this call's stack, at the interpreter's recursion limit now (on 3.11 the
    decoder counts against it; the search is cached per limit). Code called from
    another stack (a server's handler) may decode a few levels more or fewer, so tests
    keep a margin around it.

    Raises:
        AssertionError: the decoder took `_CEILING` levels; no test can then make
            JSON it cannot decode, and must say so rather than pass having shown nothing.
    """
    return _depth_limit_at(sys.getrecursionlimit())


@functools.cache
def _depth_limit_at(recursion_limit: int) -> int:
    del recursion_limit  # the cache's key: the search below depends on it on 3.11
    low, high = 1, _CEILING
    while low < high:
        middle = (low + high + 1) // 2
        try:
            json.loads(nested_lists(middle))
        except RecursionError:
            high = middle - 1
        else:
            low = middle
    assert low < _CEILING, f"json.loads decoded {_CEILING:,} nested lists: no depth is undecodable"
    return low
