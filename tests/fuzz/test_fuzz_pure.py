"""The pure parts of fuzzing: frames on the wire, properties, profiles, results."""

from __future__ import annotations

import json

import pytest
from hypothesis.vendor.pretty import pretty

from pytest_ws_resilience.errors import WsConfigError, WsFuzzError
from pytest_ws_resilience.fuzz.frames import FuzzFrame, RawJson, encode
from pytest_ws_resilience.fuzz.mutations import nested
from pytest_ws_resilience.fuzz.profiles import FUZZ_PROFILES, choose_profile
from pytest_ws_resilience.fuzz.properties import Exchange, judge
from pytest_ws_resilience.fuzz.result import FuzzFailure, FuzzResult
from pytest_ws_resilience.redaction import register_secret

# -- frames ---------------------------------------------------------------------------


def test_a_lone_surrogate_goes_out_as_its_json_escape_and_comes_back_lone() -> None:
    frame = FuzzFrame("json", {"text": "a\ud800"})
    wire = frame.wire
    assert wire == '{"text":"a\\ud800"}'
    assert isinstance(wire, str)
    wire.encode("utf-8")  # valid UTF-8 on the wire
    assert json.loads(wire)["text"] == "a\ud800"  # what the server's json.loads sees


def test_raw_json_nodes_are_written_as_they_are() -> None:
    deep = nested(3000, "list")
    digits = RawJson("1" + "0" * 5000, "an integer of 5001 digits")
    wire = encode({"a": deep, "b": [digits]})
    assert wire.startswith('{"a":[[[') and wire.endswith("0]}")
    assert len(wire) > 11000
    assert repr(deep) == "<3000 nested lists>"


def test_binary_and_text_frames_go_out_as_given() -> None:
    assert FuzzFrame("binary", b"\xff\x00").wire == b"\xff\x00"
    assert FuzzFrame("text", "{not json").wire == "{not json"
    assert FuzzFrame("text", "\u00e9").size == 2


def test_a_frame_is_shown_short_and_redacted() -> None:
    secret = "fuzz-secret-" + "k" * 30
    register_secret(secret)
    frame = FuzzFrame("json", {"token": secret, "pad": "x" * 5000})
    shown = str(frame)
    assert secret not in shown and secret not in repr(frame)
    assert shown.endswith("bytes in all)") and len(shown) < 700


def test_hypothesis_prints_a_frame_as_its_short_redacted_repr() -> None:
    # Hypothesis prints each example as it draws it; a dataclass goes field by field,
    # which wrote a 130 kB nesting whole (and warned) and bypassed the redaction.
    secret = "fuzz-secret-" + "p" * 30
    register_secret(secret)
    deep = nested(50_000, "list")
    frame = FuzzFrame("json", {"token": secret, "nonce": deep})
    printed = pretty(frame)
    assert printed == repr(frame) and pretty(deep) == repr(deep) == "<50000 nested lists>"
    assert secret not in printed and len(printed) < 300


# -- properties -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "broken"),
    [
        (Exchange(answered=True), None),
        (Exchange(answered=False, close_code=1011), "closed with 1011 (internal error"),
        (Exchange(answered=False, close_code=1006), "closed with 1006 (dropped"),
        (Exchange(answered=False, answer_bound_s=2.0), "no answer and no error frame within 2 s"),
        (Exchange(answered=True, health="no reply", answer_bound_s=1), "health message"),
    ],
)
def test_each_property_is_judged(exchange: Exchange, broken: str | None) -> None:
    verdict = judge(exchange)
    if broken is None:
        assert verdict is None
    else:
        assert verdict is not None and broken in verdict


def test_an_allowed_close_code_is_no_failure() -> None:
    assert judge(Exchange(answered=False, close_code=1009), allowed_close_codes={1009}) is None
    assert judge(Exchange(answered=False, close_code=1011), allowed_close_codes={1009})


# -- profiles -------------------------------------------------------------------------


def test_profile_precedence() -> None:
    env = {"WS_FUZZ_PROFILE": "nightly", "CI": "true"}
    assert choose_profile(explicit="ci", option="nightly", environ=env)[1] == "ws_fuzz(profile=...)"
    assert choose_profile(option="ci", environ=env) == (FUZZ_PROFILES["ci"], "--ws-fuzz-profile")
    assert choose_profile(environ=env) == (FUZZ_PROFILES["nightly"], "WS_FUZZ_PROFILE")
    assert choose_profile(environ={"CI": "1"}, ws_env="nightly")[1] == "--ws-env"
    assert choose_profile(environ={"CI": "1"}, ws_env="local") == (FUZZ_PROFILES["ci"], "CI")
    assert choose_profile(environ={}) == (FUZZ_PROFILES["local"], "default")


def test_nightly_is_longer_than_local_and_ci() -> None:
    nightly = FUZZ_PROFILES["nightly"]
    for short in ("local", "ci"):
        assert FUZZ_PROFILES[short].max_examples < nightly.max_examples
        assert FUZZ_PROFILES[short].budget_s < nightly.budget_s


def test_an_unknown_profile_is_one_line_naming_it() -> None:
    with pytest.raises(WsConfigError, match=r"^WS_FUZZ_PROFILE names no fuzz profile: 'weekly'"):
        choose_profile(environ={"WS_FUZZ_PROFILE": "weekly"})


# -- results --------------------------------------------------------------------------


def test_a_result_with_no_example_is_not_ok() -> None:
    result = FuzzResult()
    assert not result.ok
    with pytest.raises(WsFuzzError, match="no example ran: nothing was checked"):
        result.assert_ok()


def test_a_failing_result_reports_the_minimal_message_and_the_replay() -> None:
    result = FuzzResult(examples_run=10, seed=42, profile="local (default)")
    for text in ("\ud800\ud800", "\ud800"):
        failure = FuzzFailure(FuzzFrame("json", {"text": text}), "the connection closed with 1011")
        result.add_failure(failure)
        result.minimal = failure
    assert result.failure_count == 2 and len(result.failures) == 2
    report = result.report()
    assert "json {'text': '\\ud800'}" in report
    assert "shrunk from 2 failing messages" in report
    assert "seed=42" in report
    with pytest.raises(WsFuzzError):
        result.assert_ok()
