"""An item's markers, closest first, with each parent's read once per pass.

``item.iter_markers()`` climbs the item's parents (class, module, directories, session)
every time it is called, and the plugin reads every test's markers in three passes
(the collector's checks, the scheduling groups, the test's plan). The items of one
module share their parents: a `MarkerWalk` reads each parent chain once for its pass and
adds each item's own markers in front, in the order ``iter_markers`` gives.
"""

from __future__ import annotations

import pytest

__all__ = ["MarkerWalk"]


class MarkerWalk:
    """One pass over many items' markers; make a new one for each pass, since another
    plugin may add markers between passes."""

    __slots__ = ("_inherited",)

    def __init__(self) -> None:
        self._inherited: dict[object, tuple[pytest.Mark, ...]] = {}

    def markers(self, item: pytest.Item) -> tuple[pytest.Mark, ...]:
        """``item``'s markers, closest first: its own, then its parents' (as
        ``item.iter_markers()`` yields them)."""
        parent = item.parent
        if parent is None:
            return tuple(item.own_markers)
        inherited = self._inherited.get(parent)
        if inherited is None:
            inherited = self._inherited[parent] = tuple(parent.iter_markers())
        own = item.own_markers
        return (*own, *inherited) if own else inherited
