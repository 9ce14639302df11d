"""Network chaos: a proxy with byte-level toxics and WebSocket-aware message faults.

Pure (no I/O; `frame_reader`, `frame_faults` and `message_filter` build on websockets'
sans-I/O frame code):

- `toxics`: what a byte-level toxic is (latency, bandwidth, slicer, timeout, reset_peer,
  slow_close, limit_data, refuse, accept_close) and its validation.
- `timing`: when each byte may leave under the armed toxics (`StreamShaper`).
- `seeds`: replayable randomness, and the `FaultDecision` record of each fault decision.
- `presets`: named toxic sets for common networks.
- `message_faults`: what a message fault is (drop, delay, duplicate, reorder, close,
  abort, swallow_pong, delay_ping, cut_after, fragment, corrupt, oversize) and what it
  selects.
- `frame_reader`: the opening handshake, frame boundaries and frame decoding on the wire.
- `frame_faults`: the frames a frame fault (fragment, corrupt, oversize) rebuilds.
- `forwarding`: what a filter hands its connection (`Emit`, `Abort`).
- `message_filter`: `MessageFilter`, which applies message faults to one direction.

asyncio:

- `connection`: `ProxyConnection`, one proxied connection and its two lanes.
- `proxy`: `ChaosProxy`, listening on a loopback port; the toxic and fault API, outages.
"""
