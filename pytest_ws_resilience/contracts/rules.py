"""The rules of an event contract, judged once over a finished run.

Pure functions, no I/O. `judge` takes the frames a `ContractChecker` recorded and
returns every rule they break, in transcript order:

- duplicated: a non-repeatable event seen twice, or a repeatable one repeated after
  other events came in between;
- out of order: the fewest events whose removal leaves the rest in contract order (the
  complement of a longest increasing subsequence), so one displaced event is reported
  once instead of as a cascade;
- late: an event first seen after its budget, measured from the run's start;
- missing: a required event not seen by the terminal event (or by the end of the wait).

Judging the whole run at the end, rather than frame by frame, is what lets order be
decided globally (a per-frame judge would blame every event after a displaced one).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_ws_resilience.contracts.result import ContractViolation, ObservedEvent

if TYPE_CHECKING:
    from pytest_ws_resilience.contracts.contract import EventContract

__all__ = ["judge"]


def _kept_in_order(positions: Sequence[int]) -> set[int]:
    """Indexes of a longest strictly increasing subsequence of ``positions``.

    Patience sorting, O(n log n). Of equally long answers it keeps the one with the
    smallest values, so of two swapped events the one that came early is reported.
    """
    tails: list[int] = []  # tails[k]: smallest last value of an increasing run of k + 1
    tail_index: list[int] = []
    previous: list[int] = [-1] * len(positions)
    for index, position in enumerate(positions):
        k = bisect.bisect_left(tails, position)
        if k == len(tails):
            tails.append(position)
            tail_index.append(index)
        else:
            tails[k] = position
            tail_index[k] = index
        previous[index] = tail_index[k - 1] if k else -1
    kept: set[int] = set()
    index = tail_index[-1] if tail_index else -1
    while index >= 0:
        kept.add(index)
        index = previous[index]
    return kept


def judge(
    contract: EventContract, observed: Sequence[ObservedEvent], reason: str | None
) -> tuple[ContractViolation, ...]:
    """Every rule ``observed`` breaks, in transcript order.

    Args:
        contract: the contract.
        observed: the run's frames in the order received.
        reason: why the wait ended before the terminal event; None when it was seen.
    """
    found: list[tuple[float, ContractViolation]] = []
    first_seen: dict[str, int] = {}
    counts: dict[str, int] = {}
    first_duplicate: dict[str, int] = {}
    previous: str | None = None
    for index, item in enumerate(observed):
        name = item.name
        counts[name] = counts.get(name, 0) + 1
        if name not in first_seen:
            first_seen[name] = index
        elif name not in contract.repeatable:
            first_duplicate.setdefault(name, index)
        elif name != previous and name not in first_duplicate:
            first_duplicate[name] = index
            detail = f"{name} repeated after {previous}; repeats must be consecutive"
            found.append((index, ContractViolation("duplicated", name, detail, index)))
        previous = name
    for name, index in first_duplicate.items():
        if name not in contract.repeatable:
            detail = f"{name} seen {counts[name]} times"
            found.append((index, ContractViolation("duplicated", name, detail, index)))

    if contract.ordered and len(first_seen) > 1:
        firsts = sorted(first_seen.values())  # arrival order of each event's first frame
        positions = [contract._positions[observed[i].name] for i in firsts]
        kept = _kept_in_order(positions)
        kept_order = sorted(kept)
        for k, index in enumerate(firsts):
            if k in kept:
                continue
            name, position = observed[index].name, positions[k]
            before = [
                observed[firsts[j]].name for j in kept_order if j > k and positions[j] < position
            ]
            if before:
                detail = f"{name} before {', '.join(before)}"
            else:
                after = [
                    observed[firsts[j]].name
                    for j in kept_order
                    if j < k and positions[j] > position
                ]
                detail = f"{name} after {', '.join(after)}"
            found.append((index, ContractViolation("out_of_order", name, detail, index)))

    for name, budget in contract.budgets.items():
        index = first_seen.get(name, -1)
        if index >= 0 and observed[index].offset > budget:
            detail = f"{name} at +{observed[index].offset:.3f}s, over its {budget:g}s budget"
            found.append((index, ContractViolation("late", name, detail, index)))

    missing_detail = reason or f"not seen before the terminal {contract.terminal_event}"
    end = len(observed)
    for position, name in enumerate(contract.events):
        if name not in first_seen and name not in contract.optional:
            found.append((end + position, ContractViolation("missing", name, missing_detail)))
    found.sort(key=lambda pair: pair[0])  # stable: same-frame problems keep rule order
    return tuple(violation for _, violation in found)
