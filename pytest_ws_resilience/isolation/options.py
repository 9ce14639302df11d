"""The options of a test's isolation check, and the one rule that validates them.

Pure, no I/O. The same options come from two places, ``ws_isolation.configure(...)``
at the start of a test and ``@pytest.mark.websocket_security(...)`` arguments, and mean
the same in both; so they are read and checked here, once. Their names mirror
`IsolationDetector`'s constructor (``taint``, ``identity``, ``allow``,
``taint_min_length``, ``untainted_keys``) plus ``allow_patterns`` (its
``allow_pattern`` method, several at once) and ``markers`` (its ``register`` method:
extra markers per user).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_ws_resilience.isolation.markers import UserIdentity

__all__ = ["ISOLATION_OPTIONS", "IsolationOptions", "read_isolation_options"]

#: Option name -> what it takes, as a usage error shows it.
ISOLATION_OPTIONS: Mapping[str, str] = {
    "taint": "True or False",
    "identity": "True or False",
    "allow": "a list of strings",
    "allow_patterns": "a list of regular expressions (str or re.Pattern)",
    "markers": "a mapping of user (TestUser or id) to a marker string or list of them",
    "taint_min_length": "an int >= 1",
    "untainted_keys": "a list of key names",
}


@dataclass(frozen=True, slots=True)
class IsolationOptions:
    """Options given to one test's isolation check; None/empty: left as they are."""

    taint: bool | None = None
    identity: bool | None = None
    allow: tuple[str, ...] = ()
    allow_patterns: tuple[re.Pattern[str], ...] = ()
    markers: tuple[tuple[UserIdentity | str, str], ...] = ()
    taint_min_length: int | None = None
    untainted_keys: frozenset[str] | None = None


def _strings(value: Any, name: str) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping | bytes):
        raise ValueError(f"{name} must be {ISOLATION_OPTIONS[name]}, got {value!r}")
    found = tuple(items)
    for item in found:
        if not isinstance(item, str) or not item:
            raise ValueError(f"{name} must be {ISOLATION_OPTIONS[name]}, got {item!r} among them")
    return found


def _patterns(value: Any) -> tuple[re.Pattern[str], ...]:
    items = (value,) if isinstance(value, str | re.Pattern) else value
    if not isinstance(items, Iterable) or isinstance(items, Mapping | bytes):
        raise ValueError(
            f"allow_patterns must be {ISOLATION_OPTIONS['allow_patterns']}, got {value!r}"
        )
    found: list[re.Pattern[str]] = []
    for item in items:
        if isinstance(item, re.Pattern) and isinstance(item.pattern, str):
            found.append(item)
            continue
        if not isinstance(item, str):
            raise ValueError(
                f"allow_patterns must be {ISOLATION_OPTIONS['allow_patterns']}, got {item!r}"
            )
        try:
            found.append(re.compile(item))
        except re.error as err:
            raise ValueError(f"allow_patterns: {item!r} is not a valid regex ({err})") from None
    return tuple(found)


def _markers(value: Any) -> tuple[tuple[UserIdentity | str, str], ...]:
    if not isinstance(value, Mapping):
        raise ValueError(f"markers must be {ISOLATION_OPTIONS['markers']}, got {value!r}")
    found: list[tuple[UserIdentity | str, str]] = []
    for user, markers in value.items():
        if not isinstance(user, UserIdentity | str) or not user:
            raise ValueError(f"markers keys must be users (TestUser or id), got {user!r}")
        found.extend((user, marker) for marker in _strings(markers, "markers"))
    return tuple(found)


def _switch(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be {ISOLATION_OPTIONS[name]}, got {value!r}")
    return value


def read_isolation_options(options: Mapping[str, Any]) -> IsolationOptions:
    """Check and read isolation options given by name.

    Raises:
        ValueError: an unknown name, or a value of the wrong kind; one line naming
            the option (the caller adds where it was given).
    """
    unknown = [name for name in options if name not in ISOLATION_OPTIONS]
    if unknown:
        raise ValueError(
            f"unknown isolation option {unknown[0]!r} (known: {', '.join(ISOLATION_OPTIONS)})"
        )
    read: dict[str, Any] = {}
    for name, value in options.items():
        if name in ("taint", "identity"):
            read[name] = _switch(value, name)
        elif name == "allow":
            read[name] = _strings(value, name)
        elif name == "allow_patterns":
            read[name] = _patterns(value)
        elif name == "markers":
            read[name] = _markers(value)
        elif name == "taint_min_length":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be {ISOLATION_OPTIONS[name]}, got {value!r}")
            read[name] = value
        else:  # untainted_keys
            read[name] = frozenset(_strings(value, name))
    return IsolationOptions(**read)
