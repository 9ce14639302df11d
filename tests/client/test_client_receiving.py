"""Receiving without a reader task (`client.receiving`), on real connections to the
reference server: messages that came before the client took the connection are handed
over first and in order, the end is told once, and a receiver that breaks ends the
connection loudly instead of losing messages quietly."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from pytest_ws_resilience.client.receiving import ReceivingConnection
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.testing import ReferenceServer

WAIT_S = 5.0


class Recording:
    """A receiver that keeps what it is told (the `Receiver` interface)."""

    name = "recording"

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.ends: list[BaseException | None] = []
        self.arrived = asyncio.Event()

    def received(self, message: str | bytes) -> None:
        self.messages.append(json.loads(message))
        self.arrived.set()

    def ended(self, conn: ReceivingConnection, error: BaseException | None) -> None:
        self.ends.append(error)
        self.arrived.set()


class Broken(Recording):
    """A receiver with a bug: it raises on the first message."""

    def received(self, message: str | bytes) -> None:
        raise RuntimeError("bug in the receiver")


async def opened(server: ReferenceServer, tokens: TokenFactory) -> ReceivingConnection:
    offer = [Subprotocol("jwt-auth"), Subprotocol("jwt." + tokens.user().token)]
    conn = await connect(
        server.url, subprotocols=offer, proxy=None, create_connection=ReceivingConnection
    )
    assert isinstance(conn, ReceivingConnection)
    return conn


async def until(condition: Any, what: str) -> None:
    """Poll ``condition`` (bounded by `WAIT_S`); fail naming ``what`` if it never holds."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {WAIT_S}s: {what}")
        await asyncio.sleep(0.005)


@pytest.mark.asyncio
async def test_messages_before_attach_are_handed_over_first_and_in_order(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    conn = await opened(server, tokens)
    # The greeting comes right after the handshake, before anyone takes the connection.
    await until(lambda: conn._early, "the greeting never arrived")
    receiver = Recording()
    conn.attach(receiver)  # type: ignore[arg-type]
    assert [m["type"] for m in receiver.messages] == ["connection_established"]
    await conn.send(json.dumps({"type": "ping"}))
    await until(lambda: len(receiver.messages) == 2, "no pong")
    assert receiver.messages[1]["type"] == "pong"
    assert receiver.ends == []
    await conn.close()
    assert conn.ended and receiver.ends == [None]  # told once, before close returned


@pytest.mark.asyncio
async def test_an_end_before_attach_is_told_at_attach(
    server: ReferenceServer, tokens: TokenFactory
) -> None:
    conn = await opened(server, tokens)
    await conn.close()
    receiver = Recording()
    conn.attach(receiver)  # type: ignore[arg-type]
    assert receiver.ends == [None]
    assert [m["type"] for m in receiver.messages] == ["connection_established"]


@pytest.mark.asyncio
async def test_a_receiver_that_raises_ends_the_connection_with_its_error_logged(
    server: ReferenceServer, tokens: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await opened(server, tokens)
    receiver = Broken()
    with caplog.at_level(logging.ERROR, logger="pytest_ws_resilience.client"):
        conn.attach(receiver)  # type: ignore[arg-type]  # the greeting breaks it
        await until(lambda: receiver.ends, "the broken receiver was never told the end")
    assert conn.ended
    (error,) = receiver.ends
    assert isinstance(error, RuntimeError) and str(error) == "bug in the receiver"
    assert "recording: receiving failed; treating the connection as closed" in caplog.text
