"""The toxic model: what a byte-level fault is, and whether its settings make sense.

Pure: no sockets, no event loop. `ChaosProxy` builds every `Toxic` through `build_toxic`,
so a typo in an attribute name or a negative latency fails at once with a one-line
`ValueError`, not as a silent no-op in the middle of a test.

Kinds and attribute names follow Toxiproxy's, so its documentation and habits carry over
(units too: milliseconds, KB/s with KB = 1000 bytes, microseconds for the slicer delay).
Two kinds act on new connections rather than bytes: ``refuse`` and ``accept_close``.
Two act on a connection's clock rather than its bytes (`CLOCK_KINDS`): ``idle_timeout``
drops a connection that carried no byte either way for ``timeout`` ms (a cloud load
balancer's idle timeout), ``max_lifetime`` drops it ``lifetime`` ms after it opened (a
proxy's maximum connection age). They watch the whole connection: their ``stream`` only
names them (``idle_timeout_downstream``), it never narrows what counts as traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final, Literal, Self

__all__ = [
    "CLOCK_KINDS",
    "CONNECTION_KINDS",
    "HOLDING_KINDS",
    "SHAPING_KINDS",
    "STREAMS",
    "TOXIC_KINDS",
    "Stream",
    "Toxic",
    "ToxicSpec",
    "build_toxic",
    "default_toxic_name",
]

Stream = Literal["upstream", "downstream", "both"]

#: ``upstream`` is client -> server, ``downstream`` server -> client, ``both`` is both.
STREAMS: Final = ("upstream", "downstream", "both")

#: Every kind with its attributes and their defaults (Toxiproxy's names and units).
TOXIC_KINDS: Final[Mapping[str, Mapping[str, float]]] = MappingProxyType(
    {
        "latency": {"latency": 0, "jitter": 0},  # ms, ms
        "bandwidth": {"rate": 0},  # KB/s (1 KB = 1000 bytes); 0 = unlimited
        "slicer": {"average_size": 1, "size_variation": 0, "delay": 0},  # bytes, bytes, us
        "timeout": {"timeout": 0},  # ms; 0 = hold the data forever
        "reset_peer": {"timeout": 0},  # ms before the RST
        "slow_close": {"delay": 0},  # ms
        "limit_data": {"bytes": 0},  # bytes, then close
        "refuse": {},
        "accept_close": {},
        "idle_timeout": {"timeout": 0},  # ms without a byte either way (required, > 0)
        "max_lifetime": {"lifetime": 0},  # ms after the connection opened (required, > 0)
    }
)

#: Kinds that act when a connection is accepted, not on its bytes.
CONNECTION_KINDS: Final = frozenset({"refuse", "accept_close"})
#: Kinds that drop a connection at a time of its own (idle since, or opened at): both
#: directions, whatever their ``stream``.
CLOCK_KINDS: Final = frozenset({"idle_timeout", "max_lifetime"})
#: Kinds applied to the bytes of a stream (`timing.StreamShaper`); the rest act on the
#: connection (timers, close).
SHAPING_KINDS: Final = frozenset({"latency", "bandwidth", "slicer", "timeout", "limit_data"})
#: Shaping kinds that hold bytes back for a while: removing one releases what it held.
HOLDING_KINDS: Final = frozenset({"latency", "bandwidth", "slicer"})


@dataclass(frozen=True)
class Toxic:
    """One byte-level fault, as armed on a proxy.

    Frozen: `ChaosProxy.update_toxic` swaps in a new value, so a pump that read the toxic
    set for a chunk never sees it change half-way. ``key`` survives updates and tells
    per-connection state (bytes counted by ``limit_data``, the toxicity roll) which toxic
    it belongs to even when a toxic of the same name is removed and added again.
    """

    name: str
    kind: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, float] = field(default_factory=dict, hash=False)
    target: int | None = None
    key: int = field(default=0, compare=False)

    def __getitem__(self, attribute: str) -> float:
        return self.attributes[attribute]

    def applies_to(self, direction: str, connection: int) -> bool:
        """Whether this toxic acts on ``direction`` of connection number ``connection``."""
        if self.target is not None and self.target != connection:
            return False
        return self.stream == direction or self.stream == "both"

    def updated(self, *, toxicity: float | None = None, **attributes: Any) -> Self:
        """A copy with some attributes (or the toxicity) changed, validated."""
        merged = {**self.attributes, **attributes}
        rebuilt = build_toxic(
            self.kind,
            stream=self.stream,
            toxicity=self.toxicity if toxicity is None else toxicity,
            name=self.name,
            target=self.target,
            attributes=merged,
        )
        return replace(self, toxicity=rebuilt.toxicity, attributes=rebuilt.attributes)

    def describe(self) -> str:
        """``latency_downstream (latency latency=50 jitter=0, toxicity 1.0)`` for reports."""
        attrs = " ".join(f"{k}={_number(v)}" for k, v in self.attributes.items())
        where = f", connection {self.target}" if self.target is not None else ""
        return f"{self.name} ({self.kind} {attrs}".rstrip() + f", toxicity {self.toxicity}{where})"


@dataclass(frozen=True)
class ToxicSpec:
    """A toxic to arm when a proxy is created (``ChaosProxy(toxics=[...])``).

    Arming toxics with the proxy, before it accepts anything, is what makes them apply to
    the first connection from its first byte: no connection can slip through unharmed.
    """

    kind: str
    stream: Stream = "downstream"
    toxicity: float = 1.0
    name: str | None = None
    target: int | None = None
    attributes: Mapping[str, float] = field(default_factory=dict, hash=False)

    @classmethod
    def of(
        cls,
        kind: str,
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        target: int | None = None,
        **attributes: float,
    ) -> Self:
        """Like `ChaosProxy.add_toxic`: ``ToxicSpec.of("latency", latency=50)``."""
        return cls(kind, stream, toxicity, name, target, dict(attributes))


def default_toxic_name(kind: str, stream: str, target: int | None = None) -> str:
    """Toxiproxy's ``<kind>_<stream>``, plus ``@<n>`` for a toxic aimed at connection n."""
    base = f"{kind}_{stream}"
    return base if target is None else f"{base}@{target}"


def build_toxic(
    kind: str,
    *,
    stream: str = "downstream",
    toxicity: float = 1.0,
    name: str | None = None,
    target: int | None = None,
    attributes: Mapping[str, Any] | None = None,
    key: int = 0,
) -> Toxic:
    """Validate a toxic's settings and return it with every attribute filled in.

    Raises:
        ValueError: unknown kind, stream or attribute; a value of the wrong type or out of
            range; a toxicity outside 0..1; a target that is not a connection number.
    """
    if kind not in TOXIC_KINDS:
        raise ValueError(f"unknown toxic kind {kind!r}; known: {', '.join(TOXIC_KINDS)}")
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r} for {kind}; use one of {', '.join(STREAMS)}")
    if isinstance(toxicity, bool) or not isinstance(toxicity, int | float):
        raise ValueError(f"toxicity of {kind} must be a number in 0..1, got {toxicity!r}")
    if not 0.0 <= toxicity <= 1.0:
        raise ValueError(f"toxicity of {kind} must be in 0..1, got {toxicity!r}")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
        raise ValueError(f"target of {kind} must be a connection number (int), got {target!r}")
    if target is not None and target < 1:
        raise ValueError(f"target of {kind} is a 1-based connection number, got {target}")
    defaults = TOXIC_KINDS[kind]
    given = dict(attributes or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = ", ".join(defaults) or "none"
        raise ValueError(f"unknown attribute(s) {', '.join(unknown)} for {kind}; known: {known}")
    values: dict[str, float] = {}
    for attr, default in defaults.items():
        value = given.get(attr, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{kind}.{attr} must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{kind}.{attr} must be a finite number >= 0, got {value!r}")
        values[attr] = value
    _check_relations(kind, values)
    if name is not None and not name:
        raise ValueError(f"the name of a {kind} toxic must not be empty")
    return Toxic(
        name=name or default_toxic_name(kind, stream, target),
        kind=kind,
        stream=stream,  # type: ignore[arg-type]  # checked against STREAMS above
        toxicity=float(toxicity),
        attributes=MappingProxyType(values),
        target=target,
        key=key,
    )


def _check_relations(kind: str, values: Mapping[str, float]) -> None:
    if kind in CLOCK_KINDS:
        attr = "timeout" if kind == "idle_timeout" else "lifetime"
        if values[attr] <= 0:
            raise ValueError(f"{kind}.{attr} must be > 0 ms, got {values[attr]!r}")
    if kind == "slicer":
        if values["average_size"] < 1:
            raise ValueError(f"slicer.average_size must be >= 1, got {values['average_size']}")
        if values["size_variation"] >= values["average_size"] and values["size_variation"]:
            raise ValueError(
                "slicer.size_variation must be less than average_size, got "
                f"{values['size_variation']} >= {values['average_size']}"
            )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
