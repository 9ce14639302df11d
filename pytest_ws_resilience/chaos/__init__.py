"""Network chaos: a proxy with byte-level toxics and WebSocket-aware message faults.

- `proxy`: `ChaosProxy`, an in-process TCP proxy on a loopback port (asyncio).
- `toxics` (pure) shaped by `timing` (pure): latency, bandwidth, slicer, timeout,
  reset_peer, slow_close, limit_data, refuse, accept_close.
- `messages` (pure, on websockets' sans-I/O frame parser): drop, delay, duplicate,
  reorder, close, abort, swallow_pong, delay_ping, cut_after.
- `presets` (named toxic sets) and `seeds` (replayable randomness).
"""
