"""The strategy of frames a fuzzer sends: examples a user already sends, mutated.

`frame_strategy` takes example messages (JSON values) and, optionally, a JSON Schema
(through hypothesis-jsonschema, the optional extra ``schema``), and draws:

- an example as it is (the server must answer a valid message too);
- an example with one mutation (sometimes two or three), each one of: a field (or list item, at any
  depth) replaced by a hostile value (`pytest_ws_resilience.fuzz.mutations`), a field
  removed, an extra field added, the whole message replaced by a hostile value;
- a text frame that is not JSON; a binary frame.

The draw is weighted towards mutated examples, and the shrinker moves towards the
first choices: a failing message shrinks to one mutation of the simplest example.

Pure: builds strategies, sends nothing (see `mutations` on Hypothesis' imports).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from pytest_ws_resilience.errors import FuzzExtraMissingError
from pytest_ws_resilience.fuzz.frames import FuzzFrame
from pytest_ws_resilience.fuzz.mutations import (
    binary_payloads,
    hostile_values,
    raw_texts,
)

__all__ = ["Path", "check_examples", "frame_strategy", "paths_of", "replaced", "without"]

#: A place in a message: keys and list indexes from the top.
Path = tuple[str | int, ...]

#: Paths considered per message (the first ones, breadth first) and their depth.
_MAX_PATHS = 64
_MAX_PATH_DEPTH = 4
#: What one draw is: 0 the example as it is, 1 a text frame, 2 a binary frame,
#: 3 and up a mutated example (the weight of mutations).
_CHOICES = 10
#: What one mutation is: 0-3 replace a value (most bugs live there), 4 remove a field,
#: 5 add a field, 6 replace the whole message.
_MUTATIONS = 7
#: Mutations per message: mostly one (more mutations bury the one that matters).
_MUTATION_COUNTS = st.sampled_from((1, 1, 1, 1, 2, 3))
_EXTRA_KEYS = ("extra", "__proto__", "", "type ", "\u0000")
# Strategies built once: building one costs Hypothesis more than drawing from it.
_CHOICE = st.integers(0, _CHOICES - 1)
_KIND = st.integers(0, _MUTATIONS - 1)
_EXTRA_KEY = st.one_of(st.sampled_from(_EXTRA_KEYS), st.text(max_size=8))


@functools.cache
def _index(count: int) -> st.SearchStrategy[int]:
    """An index into a list of ``count`` items (shrinks towards the first)."""
    return st.integers(0, count - 1)


def check_examples(examples: Sequence[Any]) -> list[Any]:
    """The examples as JSON values (checked once, so a typo fails before fuzzing).

    Raises:
        ValueError: one line naming the example that is not a JSON value.
    """
    if isinstance(examples, str | bytes | Mapping):
        raise ValueError(
            f"ws_fuzz(examples=...) takes a list of messages, got one {type(examples).__name__}"
        )
    checked = []
    for index, example in enumerate(examples):
        try:
            checked.append(json.loads(json.dumps(example, allow_nan=False)))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"ws_fuzz example {index} is not a JSON value ({exc}): {example!r:.80}"
            ) from None
    return checked


def paths_of(value: Any) -> list[Path]:
    """Every place in ``value`` a mutation can reach, breadth first, at most 64."""
    found: list[Path] = []
    queue: list[tuple[Path, Any]] = [((), value)]
    while queue and len(found) < _MAX_PATHS:
        path, node = queue.pop(0)
        if len(path) >= _MAX_PATH_DEPTH:
            continue
        children: list[tuple[str | int, Any]] = []
        if isinstance(node, dict):
            children = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        for key, child in children:
            found.append((*path, key))
            queue.append(((*path, key), child))
    return found[:_MAX_PATHS]


def replaced(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new) if rest else new}
    copy = list(value)
    assert isinstance(head, int)
    copy[head] = replaced(copy[head], rest, new) if rest else new
    return copy


def without(value: Any, path: Path) -> Any:
    """A copy of ``value`` without the node at ``path``."""
    parent_path, last = path[:-1], path[-1]
    parent: Any = value
    for key in parent_path:
        parent = parent[key]
    if isinstance(parent, dict):
        smaller: Any = {k: v for k, v in parent.items() if k != last}
    else:
        smaller = [v for i, v in enumerate(parent) if i != last]
    return replaced(value, parent_path, smaller)


@st.composite
def _mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one mutation."""
    # The last paths first: a message's first field is usually its discriminator
    # ("type"), and a mutated discriminator only reaches the "unknown type" branch.
    paths = paths_of(value)[::-1]
    kind = draw(_KIND)
    if kind == 6:
        return draw(hostile_values())
    if not paths:
        return value
    if kind <= 3:
        return replaced(value, paths[draw(_index(len(paths)))], draw(hostile_values()))
    if kind == 4:
        return without(value, paths[draw(_index(len(paths)))])
    containers: list[Path] = [()] + [p for p in paths if isinstance(_at(value, p), dict)]
    where = containers[draw(_index(len(containers)))]
    if not isinstance(_at(value, where), dict):
        return value
    key = draw(_EXTRA_KEY)
    return replaced(value, (*where, key), draw(hostile_values()))


def _at(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def _frames(draw: st.DrawFn, bases: st.SearchStrategy[Any], binary: bool) -> FuzzFrame:
    choice = draw(_CHOICE)
    if choice == 1:
        return FuzzFrame("text", draw(raw_texts()))
    if choice == 2 and binary:
        return FuzzFrame("binary", draw(binary_payloads()))
    value = draw(bases)
    if choice == 0:
        return FuzzFrame("json", value)
    for _ in range(draw(_MUTATION_COUNTS)):
        value = draw(_mutated(value))
    return FuzzFrame("json", value)


def _schema_values(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under ``schema``, by hypothesis-jsonschema.

    Raises:
        FuzzExtraMissingError: hypothesis-jsonschema is not installed (names the extra).
        ValueError: ``schema`` is not a valid JSON Schema (checked here: hypothesis-
            jsonschema would only fail at the first draw, inside the engine).
    """
    try:
        import jsonschema  # type: ignore[import-untyped]
        from hypothesis_jsonschema import _from_schema, from_schema
    except ImportError:
        raise FuzzExtraMissingError(
            "ws_fuzz(schema=...) needs hypothesis-jsonschema: "
            "pip install 'pytest-ws-resilience[schema]'"
        ) from None
    from pytest_ws_resilience.fuzz.schema_compat import patch_hypothesis_jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"ws_fuzz(schema=...) is not a valid JSON Schema: {exc.message}") from None

    patch_hypothesis_jsonschema(_from_schema)
    return from_schema(dict(schema))


def frame_strategy(
    examples: Sequence[Any] = (),
    *,
    schema: Mapping[str, Any] | None = None,
    binary: bool = True,
) -> st.SearchStrategy[FuzzFrame]:
    """The frames to fuzz a server with, from ``examples`` and/or ``schema``.

    Args:
        examples: messages the client already sends (JSON values).
        schema: a JSON Schema of the messages; valid values drawn from it join the
            examples (hypothesis-jsonschema, extra ``schema``).
        binary: also send binary frames.

    Raises:
        ValueError: no example and no schema, an example that is not JSON, or a
            schema that is not a valid JSON Schema.
        FuzzExtraMissingError: a schema without hypothesis-jsonschema installed.
    """
    checked = check_examples(examples)
    if not checked and schema is None:
        raise ValueError("ws_fuzz needs examples=[...] (messages you send) or a schema=")
    parts: list[st.SearchStrategy[Any]] = []
    if checked:
        parts.append(st.sampled_from(checked))
    if schema is not None:
        parts.append(_schema_values(schema))
    return _frames(st.one_of(parts), binary)
