"""pytest-ws-resilience: test WebSocket services over real connections."""

from pytest_ws_resilience.chaos import ChaosProxy, MessageFault, Toxic
from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import RsaKeyPair, TestUser, TokenFactory
from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.contracts.contracts import (
    AGENT_EVENTS,
    ContractResult,
    ContractViolation,
    ContractViolationError,
    EventContract,
)
from pytest_ws_resilience.errors import (
    Attempt,
    WsAuthError,
    WsConfigError,
    WsConnectError,
    WsConnectionClosedError,
    WsMessageTooLargeError,
    WsResilienceError,
    WsTimeoutError,
)
from pytest_ws_resilience.isolation.detector import (
    IsolationDetector,
    IsolationViolation,
    IsolationViolationError,
)
from pytest_ws_resilience.load import Storm, StormResult, StormThresholdError
from pytest_ws_resilience.plugin.scheduling import WsSchedulingWarning
from pytest_ws_resilience.pool.pool import ConnectionPool, PoolStats, WsPoolExhaustedError
from pytest_ws_resilience.servers import ServiceHandle, ServiceSpec

__version__ = "0.1.0"

__all__ = [
    "AGENT_EVENTS",
    "Attempt",
    "Backoff",
    "ChaosProxy",
    "ConnectionPool",
    "ContractResult",
    "ContractViolation",
    "ContractViolationError",
    "EventContract",
    "IsolationDetector",
    "IsolationViolation",
    "IsolationViolationError",
    "MessageFault",
    "PoolStats",
    "RsaKeyPair",
    "ServiceHandle",
    "ServiceSpec",
    "Storm",
    "StormResult",
    "StormThresholdError",
    "TestUser",
    "TimeoutValue",
    "TokenFactory",
    "Toxic",
    "WsAuthError",
    "WsClient",
    "WsConfigError",
    "WsConnectError",
    "WsConnectionClosedError",
    "WsMessageTooLargeError",
    "WsPoolExhaustedError",
    "WsResilienceError",
    "WsSchedulingWarning",
    "WsSettings",
    "WsTimeoutError",
]
