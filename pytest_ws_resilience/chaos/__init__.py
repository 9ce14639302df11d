"""Network chaos: a proxy with byte-level toxics and WebSocket-aware message faults."""
