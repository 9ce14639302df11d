"""Frame walks: the strings of a frame that a marker may hide in, and what a send carried.

Pure functions, no I/O. The detector never searches a raw frame: it searches the
decoded strings of the parsed JSON, so an escape (``\\"``, ``\\uXXXX``) cannot hide a
marker, and numbers sent as JSON integers still match an id. These walks run on every
frame a watched client sends or receives, so they are written for speed (an explicit
stack, exact type checks) rather than elegance.
"""

from __future__ import annotations

from typing import Any

from pytest_ws_resilience.peer_json import decode_or

__all__ = ["SEPARATOR", "frame_strings", "frame_text", "sent_payload", "sent_strings"]

#: Joins a frame's strings into one text to scan: markers never span two strings.
SEPARATOR = "\x00"


def frame_strings(data: Any, min_length: int = 1) -> list[str]:
    """Every string of a parsed JSON value that a marker may hide in: string values,
    keys, and integers as digits (an id sent as a number); not bools or floats.

    Decoded strings, not the raw frame, so JSON escapes (quotes, ``\\uXXXX``) cannot
    hide a marker. Strings shorter than ``min_length`` are left out: no marker that
    long fits in them.
    """
    found: list[str] = []
    add = found.append
    stack = [data]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            if len(item) >= min_length:
                add(item)
        elif kind is dict:
            for key, value in item.items():
                if len(key) >= min_length:
                    add(key)
                vkind = type(value)
                if vkind is str:
                    if len(value) >= min_length:
                        add(value)
                elif vkind is dict or vkind is list:
                    push(value)
                elif vkind is int:
                    digits = str(value)
                    if len(digits) >= min_length:
                        add(digits)
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is int:
            digits = str(item)
            if len(digits) >= min_length:
                add(digits)
    return found


def sent_strings(data: Any, untainted_keys: frozenset[str]) -> list[tuple[str, bool]]:
    """The string values of a sent JSON value, each with whether it may be tainted
    (False under a key of ``untainted_keys``, at any depth below it). Keys are not
    values and are left out."""
    found: list[tuple[str, bool]] = []
    add = found.append
    stack: list[tuple[Any, bool]] = [(data, True)]
    while stack:
        item, taintable = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if type(value) is str:  # the usual flat message: no detour via the stack
                    add((value, taintable and key not in untainted_keys))
                else:
                    stack.append((value, taintable and key not in untainted_keys))
        elif isinstance(item, str):
            add((item, taintable))
        elif isinstance(item, list | tuple):
            stack.extend((value, taintable) for value in item)
    return found


def frame_text(raw: str | bytes) -> str:
    """A frame as text: binary frames decoded as UTF-8, undecodable bytes replaced."""
    return raw if isinstance(raw, str) else raw.decode("utf-8", "replace")


def sent_payload(raw: str | bytes, data: Any) -> Any:
    """What a send carried: the object given to send_json, else the frame's JSON, else
    its whole text (binary that is not UTF-8 carries no text values)."""
    if data is not None:
        return data
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return decode_or(raw, raw)
