"""Unit tests of the toxic model (`chaos.toxics`): building, validation, naming."""

from __future__ import annotations

import pytest

from pytest_ws_resilience.chaos.toxics import (
    CLOCK_KINDS,
    TOXIC_KINDS,
    ToxicSpec,
    build_toxic,
    default_toxic_name,
)


def test_build_toxic_fills_defaults_and_names_like_toxiproxy() -> None:
    toxic = build_toxic("latency", attributes={"latency": 50})
    assert toxic.name == "latency_downstream"
    assert dict(toxic.attributes) == {"latency": 50, "jitter": 0}
    assert toxic["latency"] == 50
    assert build_toxic("bandwidth", stream="upstream", target=2).name == "bandwidth_upstream@2"


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("lag", {}, "unknown toxic kind 'lag'"),
        ("latency", {"stream": "sideways"}, "unknown stream 'sideways'"),
        ("latency", {"attributes": {"delay": 5}}, "unknown attribute(s) delay for latency"),
        ("latency", {"attributes": {"latency": -1}}, "latency.latency must be a finite number"),
        ("latency", {"attributes": {"latency": "50"}}, "latency.latency must be a number"),
        ("latency", {"attributes": {"latency": True}}, "latency.latency must be a number"),
        ("latency", {"toxicity": 1.5}, "toxicity of latency must be in 0..1"),
        ("latency", {"target": 0}, "1-based connection number"),
        ("slicer", {"attributes": {"average_size": 0}}, "average_size must be >= 1"),
        (
            "slicer",
            {"attributes": {"average_size": 10, "size_variation": 10}},
            "size_variation must be less than average_size",
        ),
        ("refuse", {"attributes": {"rate": 1}}, "known: none"),
    ],
)
def test_build_toxic_rejects_bad_settings_in_one_line(
    kind: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        build_toxic(kind, **options)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_every_kind_builds_with_its_defaults() -> None:
    for kind in TOXIC_KINDS:
        if kind not in CLOCK_KINDS:  # their time has no default (test_chaos_idle_toxics)
            assert build_toxic(kind).kind == kind


def test_toxic_applies_to_its_stream_and_target_only() -> None:
    both = build_toxic("latency", stream="both")
    assert both.applies_to("upstream", 1) and both.applies_to("downstream", 7)
    targeted = build_toxic("latency", target=2)
    assert targeted.applies_to("downstream", 2)
    assert not targeted.applies_to("downstream", 1)
    assert not targeted.applies_to("upstream", 2)


def test_updated_toxic_keeps_identity_and_validates() -> None:
    toxic = build_toxic("latency", attributes={"latency": 5}, key=7)
    changed = toxic.updated(latency=9, toxicity=0.5)
    assert (changed.key, changed.name, changed["latency"], changed.toxicity) == (
        7,
        toxic.name,
        9,
        0.5,
    )
    with pytest.raises(ValueError, match="unknown attribute"):
        toxic.updated(rate=3)


def test_toxic_spec_of_matches_add_toxic_call_shape() -> None:
    spec = ToxicSpec.of("latency", stream="upstream", latency=20, jitter=5)
    assert (spec.kind, spec.stream, dict(spec.attributes)) == (
        "latency",
        "upstream",
        {"latency": 20, "jitter": 5},
    )
    assert default_toxic_name("timeout", "both") == "timeout_both"


def test_describe_is_one_readable_line() -> None:
    text = build_toxic("latency", attributes={"latency": 50}, target=3).describe()
    assert text == "latency_downstream@3 (latency latency=50 jitter=0, toxicity 1.0, connection 3)"
