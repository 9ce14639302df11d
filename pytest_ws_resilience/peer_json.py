"""The one rule for reading JSON that a peer wrote: JSON that Python cannot decode is
not JSON to us, and never an exception.

Pure, no I/O. Text can be valid JSON and still beyond Python's decoder:

- nested deeper than the decoder's recursion allows. That depth depends on the Python
  version: about 1,000 levels on 3.11, 1,500 on 3.12 and 10,000 on 3.13. From 3.14
  on, it is set by the C stack, and is about 65,000 with Linux's default 8 MiB stack.
- an integer longer than the int/str digit limit (4,300 digits by default).

``json.loads`` raises `RecursionError` for the first and `ValueError` for the
second. A receiver that let the `RecursionError` escape lost its connection and
reported a 1006, as if the server had dropped it. Every place that decodes a peer's
frame therefore catches `UNDECODABLE`, or calls `decode_or`.
"""

from __future__ import annotations

import json
from typing import Any, Final, TypeVar

__all__ = ["UNDECODABLE", "decode_or"]

#: What ``json.loads`` raises for text it cannot turn into a value:
#: `json.JSONDecodeError` and `UnicodeDecodeError` (both `ValueError`), `ValueError`
#: for an integer past the digit limit, `RecursionError` for nesting past the limit.
UNDECODABLE: Final = (ValueError, RecursionError)

_T = TypeVar("_T")


def decode_or(raw: str | bytes, default: _T) -> Any | _T:
    """``raw`` decoded as JSON, or ``default`` when Python cannot decode it."""
    try:
        return json.loads(raw)
    except UNDECODABLE:
        return default
