"""Named toxic sets for common networks, so a test can say "3G" instead of six numbers.

Pure data: each preset is a tuple of `add_toxic` keyword sets. The figures are typical
conditions, not a standard: round trips and rates in the range these networks show
in practice (latency in ms each way, rates in KB/s as Toxiproxy's ``bandwidth``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_ws_resilience.chaos.proxy import ChaosProxy
    from pytest_ws_resilience.chaos.toxics import Toxic

__all__ = ["PRESETS", "apply_preset", "preset_toxics"]


def _both_ways(kind: str, **attributes: Any) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"kind": kind, "stream": stream, "name": f"{kind}_{stream}", **attributes}
        for stream in ("downstream", "upstream")
    )


def _rates(down: float, up: float) -> tuple[dict[str, Any], ...]:
    return (
        {"kind": "bandwidth", "stream": "downstream", "name": "bandwidth_downstream", "rate": down},
        {"kind": "bandwidth", "stream": "upstream", "name": "bandwidth_upstream", "rate": up},
    )


#: Preset name -> the toxics it adds (keyword arguments of `ChaosProxy.add_toxic`).
PRESETS: Mapping[str, tuple[dict[str, Any], ...]] = MappingProxyType(
    {
        # 2G / EDGE: slow and far.
        "2g": (*_both_ways("latency", latency=300, jitter=100), *_rates(down=30, up=12)),
        # 3G (HSPA): ~750 kbps down, ~250 kbps up, 100 ms each way with jitter.
        "3g": (*_both_ways("latency", latency=100, jitter=40), *_rates(down=94, up=31)),
        # 4G / LTE: fast, some jitter.
        "4g": (*_both_ways("latency", latency=25, jitter=10), *_rates(down=2500, up=1000)),
        # Lossy Wi-Fi: TCP hides the loss as retransmission stalls: bursts of jitter
        # and writes that arrive in small, delayed pieces.
        "lossy_wifi": (
            *_both_ways("latency", latency=5, jitter=45),
            {
                "kind": "slicer",
                "stream": "downstream",
                "name": "slicer_downstream",
                "average_size": 512,
                "size_variation": 256,
                "delay": 2000,
            },
        ),
        # Geostationary satellite: ~300 ms each way.
        "satellite": (*_both_ways("latency", latency=300, jitter=20), *_rates(down=250, up=60)),
    }
)


def preset_toxics(name: str) -> tuple[dict[str, Any], ...]:
    """The toxic keyword sets of preset ``name``.

    Raises:
        ValueError: an unknown preset (the message lists the known ones).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown chaos preset {name!r}; known presets: {', '.join(PRESETS)}"
        ) from None


def apply_preset(proxy: ChaosProxy, name: str) -> list[Toxic]:
    """Add preset ``name``'s toxics to ``proxy``; returns them (to remove them later)."""
    toxics = []
    for spec in preset_toxics(name):
        options = dict(spec)
        kind = options.pop("kind")
        toxics.append(proxy.add_toxic(kind, **options))
    return toxics
