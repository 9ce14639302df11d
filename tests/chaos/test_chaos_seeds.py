"""Unit tests of replayable chaos (`chaos.seeds`): derived seeds and the decision record."""

from __future__ import annotations

from pytest_ws_resilience.chaos.seeds import FaultDecision, derive_rng


def test_derive_rng_is_deterministic_and_separates_parts() -> None:
    a = derive_rng(42, "toxic", "latency_downstream", 1).random()
    assert a == derive_rng(42, "toxic", "latency_downstream", 1).random()
    assert a != derive_rng(43, "toxic", "latency_downstream", 1).random()
    assert a != derive_rng(42, "toxic", "latency_downstream", 2).random()
    # The type of a part counts: the connection 1 and the name "1" are not the same.
    assert derive_rng(42, 1).random() != derive_rng(42, "1").random()


def test_fault_decision_prints_as_one_line() -> None:
    decision = FaultDecision(3, "downstream", "drop#1", "dropped", "message 2 (text, 10 bytes)")
    assert str(decision) == "#3 downstream drop#1: dropped (message 2 (text, 10 bytes))"
