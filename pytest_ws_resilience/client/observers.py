"""Who may watch a client's traffic: receive hooks, the `ClientObserver` protocol, and
the `Observers` a client tells.

The isolation detector, the plugin's per-test watch, load scenarios and users' own
checks see every frame through these doors, synchronously, on the client's own receive
and send paths. Structural typing: an observer implements the three methods, it does
not inherit from anything here. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pytest_ws_resilience.client.eventlog import LogRecord
from pytest_ws_resilience.client.logs import client_logger

if TYPE_CHECKING:
    from pytest_ws_resilience.client.client import WsClient

__all__ = ["ClientObserver", "Observers", "ReceiveHook"]

#: Called with each received frame's record (`WsClient.add_receive_hook`).
ReceiveHook = Callable[[LogRecord], None]


class ClientObserver(Protocol):
    """Something that watches a client's traffic (e.g. the isolation detector).

    Called synchronously on the client's own paths, so implementations must be quick
    and must not block. ``on_receive`` runs in websockets' protocol callback (the client's
    receiver), so an exception there cannot reach the test directly: it is logged and
    receiving goes on, and the next
    ``expect`` re-raises the first one. ``on_send`` and ``on_canary`` run in the
    caller's own call and raise there. ``data`` of `on_send` is the object given to
    ``send_json`` (or None for text and bytes sent as such).
    """

    def on_receive(self, client: WsClient, record: LogRecord) -> None:
        """A frame arrived (after it was logged)."""

    def on_send(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        """A message is about to be sent."""

    def on_canary(self, client: WsClient, marker: str) -> None:
        """``client`` made a canary (or had made it before this observer was added)."""

    # Optional (looked up, not required, so older observers keep working):
    # ``on_close(client, code, reason)``: the connection ended; ``reason`` is the close
    # reason the peer sent ("" when none). The isolation detector scans it.


class Observers:
    """The receive hooks, observers and canaries of one client, and how they are told.

    Pure bookkeeping, called on the client's own paths:

    - an observer is added once, and a late one is told every canary made before it
      (a fixture that attaches after the client was used misses none);
    - `received` tells every hook, then every observer, of one frame; one that raises
      stops neither the others nor the receiving: it is logged and handed to
      ``on_error`` (the client's waits re-raise the first one in the next ``expect``).

    Args:
        on_error: called with each exception a hook or an observer raised on receive.
    """

    __slots__ = ("_on_error", "canaries", "hooks", "observers")

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self.hooks: list[ReceiveHook] = []
        self.observers: list[ClientObserver] = []
        #: Every canary the client made, in order.
        self.canaries: list[str] = []
        self._on_error = on_error

    def add(self, client: WsClient, observer: ClientObserver) -> None:
        """Start telling ``observer``; replay the canaries made so far to it."""
        if observer in self.observers:
            return
        self.observers.append(observer)
        for marker in self.canaries:
            observer.on_canary(client, marker)

    def remove(self, observer: ClientObserver) -> None:
        """Stop telling ``observer`` (unknown ones are ignored)."""
        if observer in self.observers:
            self.observers.remove(observer)

    def canary(self, client: WsClient, label: str) -> str:
        """A new unique marker, made known to every observer."""
        marker = f"{label}-{uuid.uuid4().hex}"
        self.canaries.append(marker)
        for observer in self.observers:
            observer.on_canary(client, marker)
        return marker

    def received(self, client: WsClient, record: LogRecord) -> None:
        """Tell hooks and observers of a frame ``client`` logged."""
        for hook in self.hooks:
            try:
                hook(record)
            except Exception as exc:
                self._failed(client, hook, exc)
        for observer in self.observers:
            try:
                observer.on_receive(client, record)
            except Exception as exc:
                self._failed(client, observer, exc)

    def closed(self, client: WsClient, code: int | None, reason: str) -> None:
        """Tell observers with an ``on_close`` that ``client``'s connection ended, with
        the close code and the reason the peer sent (data too: it may carry an id)."""
        for observer in self.observers:
            on_close = getattr(observer, "on_close", None)
            if on_close is None:
                continue
            try:
                on_close(client, code, reason)
            except Exception as exc:
                self._failed(client, observer, exc)

    def sending(self, client: WsClient, raw: str | bytes, data: Any) -> None:
        """Tell observers of a message ``client`` is about to send (they may raise)."""
        for observer in self.observers:
            observer.on_send(client, raw, data)

    def _failed(self, client: WsClient, hook: object, exc: Exception) -> None:
        client_logger.error("%s: receive hook %r failed: %s", client.name, hook, exc)
        self._on_error(exc)
