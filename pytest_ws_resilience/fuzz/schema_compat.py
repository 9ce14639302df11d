"""hypothesis-jsonschema 0.23.1 on a Hypothesis that changed an internal it uses.

hypothesis-jsonschema draws an object's properties with Hypothesis' internal
``many(...)`` as ``while elements.more(): ... elements.reject()``. Hypothesis 6.155
still has ``more()``; by 6.170 ``many`` is a context manager iterated with ``for`` and
``more()`` is gone, so every object schema fails with ``AttributeError: 'many' object
has no attribute 'more'``. `patch_hypothesis_jsonschema` gives hypothesis-jsonschema
(only it: Hypothesis' own strategies keep the new class) an adapter with the old
methods, when and only when the installed Hypothesis lacks them. Remove this module
when hypothesis-jsonschema releases a fix.

Pure: no I/O (see `pytest_ws_resilience.fuzz.mutations` on Hypothesis' imports).
"""

from __future__ import annotations

import types
from typing import Any

from hypothesis.internal.conjecture import utils as conjecture_utils

__all__ = ["patch_hypothesis_jsonschema"]

_END = object()


class _ManyWithMore:
    """The old ``many`` API (``more()``, ``reject()``) over the new iterator."""

    def __init__(self, data: Any, min_size: int, max_size: float, average_size: float, **kw: Any):
        self._many = conjecture_utils.many(data, min_size, max_size, average_size, **kw)
        self._many.__enter__()
        self._elements = iter(self._many)

    def more(self) -> bool:
        if next(self._elements, _END) is _END:
            self._many.__exit__(None)
            return False
        return True

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


class _UtilsWithOldMany(types.ModuleType):
    """Hypothesis' conjecture utils, with `_ManyWithMore` as ``many``."""

    many = _ManyWithMore

    def __getattr__(self, name: str) -> Any:
        return getattr(conjecture_utils, name)


def patch_hypothesis_jsonschema(module: types.ModuleType) -> None:
    """Point ``module`` (``hypothesis_jsonschema._from_schema``) at `_ManyWithMore`
    when the installed Hypothesis' ``many`` has no ``more()``; else leave it be."""
    if hasattr(conjecture_utils.many, "more"):
        return
    if getattr(module, "cu", None) is conjecture_utils:
        module.cu = _UtilsWithOldMany("hypothesis_jsonschema_cu")  # type: ignore[attr-defined]
