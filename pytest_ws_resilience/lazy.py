"""Lazy public imports (PEP 562, as websockets' ``lazy_import``).

A package lists the names it exports and the module defining each; that module is
imported the first time one of its names is read. So ``import pytest_ws_resilience``
loads neither pytest nor a server, and ``from pytest_ws_resilience import WsClient``
loads the client and what it needs, nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    namespace: MutableMapping[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package exporting ``exports`` lazily.

    Args:
        namespace: the package's ``globals()``; a name, once loaded, is stored there,
            so later reads are plain attribute lookups.
        exports: public name -> dotted name of the module that defines it.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
