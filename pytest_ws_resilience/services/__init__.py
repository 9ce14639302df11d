"""Services the tests need: Docker containers or local commands, healthy by a real
WebSocket handshake, reaped when a run dies, shared across xdist workers."""
