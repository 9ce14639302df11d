"""Load: connection storms, connect/disconnect cycles, bursts during the handshake, and
async benchmarks."""
