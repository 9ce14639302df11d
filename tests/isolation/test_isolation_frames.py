"""The frame walks (`isolation.frames`): which strings of a frame are searched, and which
sent values may be taint; pure, without sockets."""

from __future__ import annotations

from pytest_ws_resilience.isolation.frames import frame_strings, sent_strings


def test_frame_strings_takes_values_keys_and_ints_but_not_bools_or_floats() -> None:
    strings = frame_strings({"user_id": 12345678, "ok": True, "ratio": 0.25, "tags": ["a", 7]})
    assert sorted(strings) == sorted(["user_id", "12345678", "ok", "ratio", "tags", "a", "7"])
    # Strings too short to hold a marker are left out.
    assert sorted(frame_strings({"user_id": 12345678, "ok": "fine", "n": [7]}, 4)) == [
        "12345678",
        "fine",
        "user_id",
    ]


def test_sent_strings_marks_values_under_untainted_keys() -> None:
    values = sent_strings(
        {"type": "user_message", "text": "hello there", "meta": {"op": ["x"], "note": "n"}},
        frozenset({"type", "op"}),
    )
    assert sorted(values) == [("hello there", True), ("n", True), ("user_message", False),
                              ("x", False)]  # fmt: skip
