"""Event contracts (stub: being written; see the issue-3 prompt for the API)."""

from __future__ import annotations

from typing import Any

__all__ = ["ContractResult", "EventContract"]


class ContractResult:
    run: Any = None

    def raise_for_violations(self) -> None: ...


class EventContract:
    events: tuple[str, ...] = ()
    name: str = ""

    def checker(self, correlation: Any, *, skip_runs: frozenset[Any], started_at: float) -> Any:
        raise NotImplementedError
