"""Network chaos: a proxy with byte-level toxics and WebSocket-aware message faults.

- `ChaosProxy` (asyncio glue, `proxy`): an in-process TCP proxy on a loopback port.
- Toxics (`toxics`, pure) shaped by `scheduling` (pure): latency, bandwidth, slicer,
  timeout, reset_peer, slow_close, limit_data, refuse, accept_close.
- Message faults (`messages`, pure, on websockets' sans-I/O frame parser): drop, delay,
  duplicate, reorder, close, abort, swallow_pong, delay_ping, cut_after.
- `presets` (named toxic sets) and `seeds` (replayable randomness).
"""

from pytest_ws_resilience.chaos.messages import Message, MessageFault
from pytest_ws_resilience.chaos.presets import PRESETS, apply_preset
from pytest_ws_resilience.chaos.proxy import ChaosProxy, ProxyConnection
from pytest_ws_resilience.chaos.timing import Decision
from pytest_ws_resilience.chaos.toxics import Toxic, ToxicSpec

__all__ = [
    "PRESETS",
    "ChaosProxy",
    "Decision",
    "Message",
    "MessageFault",
    "ProxyConnection",
    "Toxic",
    "ToxicSpec",
    "apply_preset",
]
