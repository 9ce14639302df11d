"""WsClient and what it is made of: auth methods and the fallback chain (pure), the
handshake loop, timeouts and the greeting (pure), the event log, matching (pure) and
waits, observers, metrics, tokens."""
