"""The client's two loggers, both redacting: no token reaches a log record.

``pytest_ws_resilience.client`` carries the client's own debug lines (attempts,
closes, reader failures). ``pytest_ws_resilience.client.wire`` is the logger the client
hands to websockets, which logs handshake headers (tokens included) at debug level.
Both get a `RedactingFilter` here, once, whichever module of the client is imported.
"""

from __future__ import annotations

import logging

from pytest_ws_resilience.redaction import RedactingFilter

__all__ = ["client_logger", "wire_logger"]

client_logger = logging.getLogger("pytest_ws_resilience.client")
wire_logger = logging.getLogger("pytest_ws_resilience.client.wire")
for _logger in (client_logger, wire_logger):
    if not any(isinstance(f, RedactingFilter) for f in _logger.filters):
        _logger.addFilter(RedactingFilter())
