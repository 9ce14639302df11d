"""WsClient and what it is made of: auth methods, tokens, event log, metrics."""
