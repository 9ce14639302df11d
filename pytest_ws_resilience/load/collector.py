"""Python's cyclic garbage collector, paused while a storm opens and closes its
connections.

A storm allocates in bursts: a `WsClient` per connection (its event log, waiter,
metrics, connector) and websockets' own objects for every handshake. Each burst of
allocations triggers the collector, and each run of it traverses the young objects, and
now and then the whole heap, while a thousand handshakes wait on this event loop:
measured on 1,000 connections (``benchmarks/storm.py``), the collector was about a
quarter of the storm's client CPU, a pause the connect latencies and the storm's
duration then charge to the server. `timeit` turns the collector off while it times
for the same reason. Reference counting still frees everything that is not in a
cycle; the cycles made during the storm are collected once it is over (the first
allocations after it trigger a collection of everything the pause kept young).

Pauses nest (concurrent storms in one loop, storms in several threads): the collector
is turned back on when the last pause ends, and only if it was on when the first began,
so a user's own ``gc.disable()`` stays in force. Pure: the ``gc`` module only.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Turn the cyclic garbage collector off for the ``with`` block (nesting-safe)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
