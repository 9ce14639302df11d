"""pytest-ws-resilience: test WebSocket services over real connections.

The public API, imported lazily: ``import pytest_ws_resilience`` loads neither pytest
nor a server; each name loads its own module on first use. The layout is described in
``docs/architecture.md``: `config` (settings), `client`, `contracts`, `isolation`,
`pool`, `chaos`, `fuzz`, `servers`, `load`, `report` (library), `testing` (the reference
server) and `plugin` (the pytest glue, last).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_ws_resilience.lazy import lazy_exports

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
    "DifferentialResult",
    "DistributedResult",
    "EventContract",
    "FuzzExtraMissingError",
    "FuzzFailure",
    "FuzzFrame",
    "FuzzResult",
    "IsolationDetector",
    "IsolationViolation",
    "IsolationViolationError",
    "LocustExtraMissingError",
    "LocustRunError",
    "MessageFault",
    "NothingChecked",
    "PoolStats",
    "RaceResult",
    "ResourceSample",
    "ResumeResult",
    "RsaKeyPair",
    "Scenario",
    "ScopeRule",
    "ServerGrowth",
    "ServerResourcesUnavailableError",
    "ServiceHandle",
    "ServiceSpec",
    "Signal",
    "Storm",
    "StormResult",
    "StormThresholdError",
    "StreamRule",
    "TestUser",
    "TimeoutValue",
    "TokenFactory",
    "Toxic",
    "WorkerShare",
    "WsAuthError",
    "WsChaosWarning",
    "WsClient",
    "WsConfigError",
    "WsConnectError",
    "WsConnectionClosedError",
    "WsFuzzError",
    "WsHeartbeatWarning",
    "WsIsolationWarning",
    "WsMessageTooLargeError",
    "WsNothingCheckedWarning",
    "WsPoolExhaustedError",
    "WsResilienceError",
    "WsSchedulingWarning",
    "WsSettings",
    "WsTimeoutError",
    "frame_strategy",
]

#: Where each public name is defined; its module is imported on first use.
_EXPORTS = {
    "AGENT_EVENTS": "pytest_ws_resilience.testing.vocabulary",
    "Attempt": "pytest_ws_resilience.errors",
    "Backoff": "pytest_ws_resilience.config.backoff",
    "ChaosProxy": "pytest_ws_resilience.chaos.proxy",
    "ConnectionPool": "pytest_ws_resilience.pool.pool",
    "ContractResult": "pytest_ws_resilience.contracts.result",
    "ContractViolation": "pytest_ws_resilience.contracts.result",
    "ContractViolationError": "pytest_ws_resilience.errors",
    "DifferentialResult": "pytest_ws_resilience.isolation.differential",
    "DistributedResult": "pytest_ws_resilience.locust.stats",
    "EventContract": "pytest_ws_resilience.contracts.contract",
    "FuzzExtraMissingError": "pytest_ws_resilience.errors",
    "FuzzFailure": "pytest_ws_resilience.fuzz.result",
    "FuzzFrame": "pytest_ws_resilience.fuzz.frames",
    "FuzzResult": "pytest_ws_resilience.fuzz.result",
    "IsolationDetector": "pytest_ws_resilience.isolation.detector",
    "IsolationViolation": "pytest_ws_resilience.isolation.violation",
    "IsolationViolationError": "pytest_ws_resilience.errors",
    "LocustExtraMissingError": "pytest_ws_resilience.errors",
    "LocustRunError": "pytest_ws_resilience.errors",
    "MessageFault": "pytest_ws_resilience.chaos.message_faults",
    "NothingChecked": "pytest_ws_resilience.vacuous",
    "PoolStats": "pytest_ws_resilience.pool.stats",
    "RaceResult": "pytest_ws_resilience.isolation.races",
    "ResourceSample": "pytest_ws_resilience.servers.growth",
    "ResumeResult": "pytest_ws_resilience.isolation.resume",
    "RsaKeyPair": "pytest_ws_resilience.client.tokens",
    "Scenario": "pytest_ws_resilience.load.scenario",
    "ScopeRule": "pytest_ws_resilience.isolation.scopes",
    "ServerGrowth": "pytest_ws_resilience.servers.growth",
    "ServerResourcesUnavailableError": "pytest_ws_resilience.errors",
    "ServiceHandle": "pytest_ws_resilience.servers.handle",
    "ServiceSpec": "pytest_ws_resilience.config.services",
    "Signal": "pytest_ws_resilience.isolation.scopes",
    "Storm": "pytest_ws_resilience.load.storm",
    "StormResult": "pytest_ws_resilience.load.results",
    "StormThresholdError": "pytest_ws_resilience.errors",
    "StreamRule": "pytest_ws_resilience.isolation.streams",
    "TestUser": "pytest_ws_resilience.client.tokens",
    "TimeoutValue": "pytest_ws_resilience.config.timeouts",
    "TokenFactory": "pytest_ws_resilience.client.tokens",
    "Toxic": "pytest_ws_resilience.chaos.toxics",
    "WsAuthError": "pytest_ws_resilience.errors",
    "WsChaosWarning": "pytest_ws_resilience.errors",
    "WsClient": "pytest_ws_resilience.client.client",
    "WsConfigError": "pytest_ws_resilience.errors",
    "WsConnectError": "pytest_ws_resilience.errors",
    "WsConnectionClosedError": "pytest_ws_resilience.errors",
    "WsFuzzError": "pytest_ws_resilience.errors",
    "WsHeartbeatWarning": "pytest_ws_resilience.errors",
    "WsIsolationWarning": "pytest_ws_resilience.errors",
    "WsMessageTooLargeError": "pytest_ws_resilience.errors",
    "WsNothingCheckedWarning": "pytest_ws_resilience.errors",
    "WsPoolExhaustedError": "pytest_ws_resilience.errors",
    "WsResilienceError": "pytest_ws_resilience.errors",
    "WsSchedulingWarning": "pytest_ws_resilience.errors",
    "WsSettings": "pytest_ws_resilience.config.settings",
    "WsTimeoutError": "pytest_ws_resilience.errors",
    "WorkerShare": "pytest_ws_resilience.locust.stats",
    "frame_strategy": "pytest_ws_resilience.fuzz.strategies",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:
    from pytest_ws_resilience.chaos.message_faults import MessageFault
    from pytest_ws_resilience.chaos.proxy import ChaosProxy
    from pytest_ws_resilience.chaos.toxics import Toxic
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.tokens import RsaKeyPair, TestUser, TokenFactory
    from pytest_ws_resilience.config.backoff import Backoff
    from pytest_ws_resilience.config.services import ServiceSpec
    from pytest_ws_resilience.config.settings import WsSettings
    from pytest_ws_resilience.config.timeouts import TimeoutValue
    from pytest_ws_resilience.contracts.contract import EventContract
    from pytest_ws_resilience.contracts.result import ContractResult, ContractViolation
    from pytest_ws_resilience.errors import (
        Attempt,
        ContractViolationError,
        FuzzExtraMissingError,
        IsolationViolationError,
        LocustExtraMissingError,
        LocustRunError,
        ServerResourcesUnavailableError,
        StormThresholdError,
        WsAuthError,
        WsChaosWarning,
        WsConfigError,
        WsConnectError,
        WsConnectionClosedError,
        WsFuzzError,
        WsHeartbeatWarning,
        WsIsolationWarning,
        WsMessageTooLargeError,
        WsNothingCheckedWarning,
        WsPoolExhaustedError,
        WsResilienceError,
        WsSchedulingWarning,
        WsTimeoutError,
    )
    from pytest_ws_resilience.fuzz.frames import FuzzFrame
    from pytest_ws_resilience.fuzz.result import FuzzFailure, FuzzResult
    from pytest_ws_resilience.fuzz.strategies import frame_strategy
    from pytest_ws_resilience.isolation.detector import IsolationDetector
    from pytest_ws_resilience.isolation.differential import DifferentialResult
    from pytest_ws_resilience.isolation.races import RaceResult
    from pytest_ws_resilience.isolation.resume import ResumeResult
    from pytest_ws_resilience.isolation.scopes import ScopeRule, Signal
    from pytest_ws_resilience.isolation.streams import StreamRule
    from pytest_ws_resilience.isolation.violation import IsolationViolation
    from pytest_ws_resilience.load.results import StormResult
    from pytest_ws_resilience.load.scenario import Scenario
    from pytest_ws_resilience.load.storm import Storm
    from pytest_ws_resilience.locust.stats import DistributedResult, WorkerShare
    from pytest_ws_resilience.pool.pool import ConnectionPool
    from pytest_ws_resilience.pool.stats import PoolStats
    from pytest_ws_resilience.servers.growth import ResourceSample, ServerGrowth
    from pytest_ws_resilience.servers.handle import ServiceHandle
    from pytest_ws_resilience.testing.vocabulary import AGENT_EVENTS
    from pytest_ws_resilience.vacuous import NothingChecked
