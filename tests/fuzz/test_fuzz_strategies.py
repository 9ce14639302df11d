"""What the strategies draw: examples, mutations of them, schema values, other frames."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_ws_resilience.errors import FuzzExtraMissingError
from pytest_ws_resilience.fuzz.frames import FuzzFrame, encode
from pytest_ws_resilience.fuzz.mutations import (
    LONG_STRING_CHARS,
    MAX_STRING,
    MAX_STRING_BYTES,
    longest_repeat,
)
from pytest_ws_resilience.fuzz.strategies import (
    check_examples,
    frame_strategy,
    paths_of,
    replaced,
    without,
)

EXAMPLES = [{"type": "user_message", "text": "hi", "meta": {"tags": ["a"]}}]
FAST = settings(
    max_examples=150, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)


def test_paths_reach_nested_fields_and_items() -> None:
    assert paths_of(EXAMPLES[0]) == [
        ("type",),
        ("text",),
        ("meta",),
        ("meta", "tags"),
        ("meta", "tags", 0),
    ]


def test_replacing_and_removing_copy_the_message() -> None:
    message: dict[str, Any] = {"a": {"b": [1, 2]}}
    assert replaced(message, ("a", "b", 1), None) == {"a": {"b": [1, None]}}
    assert replaced(message, ("a", "new"), 3) == {"a": {"b": [1, 2], "new": 3}}
    assert without(message, ("a", "b")) == {"a": {}}
    assert message == {"a": {"b": [1, 2]}}


def test_examples_must_be_json() -> None:
    with pytest.raises(ValueError, match=r"^ws_fuzz example 1 is not a JSON value"):
        check_examples([{"ok": 1}, {"bad": object()}])
    with pytest.raises(ValueError, match="takes a list of messages, got one dict"):
        check_examples({"type": "ping"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs examples"):
        frame_strategy([])


@FAST
@given(frame_strategy(EXAMPLES))
def test_every_drawn_frame_can_be_sent(frame: FuzzFrame) -> None:
    wire = frame.wire
    if isinstance(wire, str):
        wire.encode("utf-8")  # a text frame is valid UTF-8, lone surrogates escaped
    assert frame.size < 1024 * 1024  # under websockets' default frame limit


def test_three_of_the_longest_strings_fit_in_one_frame() -> None:
    # Strings go out JSON-escaped: 65,536 astral characters were 786 KiB, and two of
    # them in one message passed the 1 MiB frame limit, failing a clean server (1009).
    longest = {char: char * longest_repeat(char) for char in LONG_STRING_CHARS}
    assert max(len(text) for text in longest.values()) == MAX_STRING
    for char, text in longest.items():
        assert len(encode(text)) - 2 <= MAX_STRING_BYTES, repr(char)
        message = {"type": text, "text": text, "meta": {"tags": [text]}}
        assert len(encode(message)) < 1024 * 1024, repr(char)


def test_the_draws_cover_every_mutation_family() -> None:
    seen: set[str] = set()

    @settings(
        max_examples=400, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(frame_strategy(EXAMPLES))
    def collect(frame: FuzzFrame) -> None:
        seen.add(frame.kind)
        if frame.kind != "json":
            return
        wire = str(frame.wire)
        if isinstance(frame.value, dict) and frame.value.get("type") == EXAMPLES[0]["type"]:
            seen.add("kept type")
        if "\\ud" in wire:
            seen.add("lone surrogate")
        if "[[[[" in wire or '{"a":{"a":' in wire:
            seen.add("deep nesting")
        if re.search(r'"[^"]{1000,}"', wire):  # (no json.loads: the nesting is too deep)
            seen.add("long string")
        if isinstance(frame.value, dict) and "text" not in frame.value:
            seen.add("missing field")

    collect()
    assert {"json", "text", "binary", "kept type", "lone surrogate", "deep nesting"} <= seen
    assert {"long string", "missing field"} <= seen


SCHEMA = {
    "type": "object",
    "properties": {"type": {"const": "user_message"}, "text": {"type": "string"}},
    "required": ["type", "text"],
}


@FAST
@given(st.data())
def test_a_schema_adds_valid_messages(data: st.DataObject) -> None:
    frame = data.draw(frame_strategy(schema=SCHEMA))
    assert frame.kind in ("json", "text", "binary")


def test_a_schema_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis_jsonschema", None)
    with pytest.raises(
        FuzzExtraMissingError, match=r"pip install 'pytest-ws-resilience\[schema\]'"
    ):
        frame_strategy(schema=SCHEMA)


def test_an_invalid_schema_is_one_line_before_any_draw() -> None:
    with pytest.raises(ValueError, match=r"^ws_fuzz\(schema=\.\.\.\) is not a valid JSON Schema: "):
        frame_strategy(schema={"type": "objekt"})
