"""Fields of a parsed frame named by a dotted path: the one rule every isolation rule
that names a field uses (a scope's ``field``, a signal's ``match``, a stream's
``sequence``, ``per`` and ``where``, a resume's ``scope`` and ``done``).

Pure, no I/O. A path is a dotted string (``"room"``, ``"meta.seq"``, ``"events.0.room"``);
a segment of digits indexes a list. A mapping of fields matches a frame when every
field is present and equal; a predicate is asked through `contracts.keys.holds` (a
frame of another shape does not match, it does not raise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pytest_ws_resilience.contracts.keys import holds

__all__ = [
    "FieldPath",
    "Fields",
    "field_path",
    "fields_match",
    "fields_of",
    "frame_test",
    "read_field",
]

#: A dotted path, split: ``("meta", "seq")``.
FieldPath = tuple[str, ...]
#: Fields a frame must have, each with its value: ``((("type",), "join"),)``.
Fields = tuple[tuple[FieldPath, Any], ...]

_MISSING = object()


def field_path(value: Any, what: str) -> FieldPath:
    """A dotted field path (``"room_seq"``, ``"meta.seq"``) as its keys.

    Raises:
        ValueError: not a non-empty string of non-empty keys (one line naming ``what``).
    """
    if not isinstance(value, str) or not value or "" in value.split("."):
        raise ValueError(
            f"{what} must be a dotted field path such as 'room' or 'meta.seq', got {value!r}"
        )
    return tuple(value.split("."))


def read_field(frame: Any, path: FieldPath, default: Any = None) -> Any:
    """The value at ``path`` in a parsed frame; ``default`` when absent."""
    value = frame
    for key in path:
        if type(value) is dict:
            value = value.get(key, _MISSING)
            if value is _MISSING:
                return default
        elif type(value) is list and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return default
    return value


def fields_of(fields: Mapping[str, Any], what: str) -> Fields:
    """A mapping of dotted fields and their values, checked and split.

    Raises:
        ValueError: a key that is not a dotted field path (one line naming ``what``).
    """
    return tuple((field_path(key, what), value) for key, value in fields.items())


def fields_match(frame: Any, fields: Fields) -> bool:
    """True when ``frame`` (parsed JSON) has every field of ``fields``, each equal.

    Called on every frame by signals and stream selectors: a flat key is looked up
    directly.
    """
    if type(frame) is not dict:
        return False
    for path, wanted in fields:
        found = (
            frame.get(path[0], _MISSING) if len(path) == 1 else read_field(frame, path, _MISSING)
        )
        if found != wanted:
            return False
    return True


def frame_test(given: Any, what: str) -> Callable[[Any], bool]:
    """A mapping of fields, or a predicate on the parsed frame, as one test.

    Raises:
        ValueError: an empty mapping, or neither a mapping nor a callable (one line
            naming ``what``).
    """
    if isinstance(given, Mapping):
        if not given:
            raise ValueError(f"{what} must name at least one field, or be a predicate")
        wanted = fields_of(given, what)
        return lambda frame: fields_match(frame, wanted)
    if callable(given):
        predicate = given
        return lambda frame: holds(predicate, frame)
    raise ValueError(
        f"{what} must be a mapping of fields or a predicate, got {type(given).__name__}"
    )
