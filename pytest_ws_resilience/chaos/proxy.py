"""`ChaosProxy`: an in-process asyncio TCP proxy with toxics, between client and server.

This module is the public face: listening, outages, the toxic and message-fault API,
the decision log and the stats. Each accepted connection is a
`chaos.connection.ProxyConnection`, which moves the bytes through its two lanes.

What the design answers (the complaints about byte proxies this one is built against):

- atomic arming: toxics given to the constructor (or added before the first connection)
  apply to every connection from its first byte;
- no locks, no awaits: the toxic set is an immutable tuple swapped on change and read
  per chunk, so adding, updating or removing a toxic never blocks, even
  under heavy traffic;
- toxicity is drawn once per (connection, toxic) from the proxy's seed and recorded as a
  `FaultDecision`; a disabled toxic has no effect at all (a disabled ``reset_peer``
  never resets), and a seed replays the same decisions;
- per-connection targeting (``target=N``) and WebSocket-aware message faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Self

from pytest_ws_resilience.chaos.connection import ProxyConnection
from pytest_ws_resilience.chaos.message_faults import (
    PREDICATE_RAISED,
    MessageFault,
    Selector,
    fault_findings,
)
from pytest_ws_resilience.chaos.message_filter import MessageFilter
from pytest_ws_resilience.chaos.seeds import FaultDecision, derive_rng
from pytest_ws_resilience.chaos.sides import ClientSide
from pytest_ws_resilience.chaos.toxics import (
    CONNECTION_KINDS,
    Toxic,
    ToxicSpec,
    build_toxic,
    default_toxic_name,
)
from pytest_ws_resilience.chaos.upstream import parse_upstream
from pytest_ws_resilience.loopback import is_loopback_host
from pytest_ws_resilience.redaction import redact
from pytest_ws_resilience.vacuous import NothingChecked

__all__ = ["ChaosProxy"]


class ChaosProxy:
    """A loopback TCP proxy with byte-level toxics and WebSocket message faults.

    Args:
        upstream: ``ws://127.0.0.1:PORT/path?q`` (WebSocket-aware: message faults work),
            ``wss://...`` (bytes only) or ``host:port`` / ``tcp://host:port`` (any TCP
            protocol; bytes only). Loopback only.
        seed: the seed of every random decision; ``None`` draws one, kept in ``seed``.
        host: where to listen (loopback only).
        strip_compression: remove ``Sec-WebSocket-Extensions`` from the client's upgrade
            request, so that messages are not compressed and message predicates can read
            them (see `chaos.message_filter`).
        toxics: toxics armed before the proxy accepts anything (atomic with creation).
        name: a label for connection ids and reports.
        connect_timeout: bound on opening each upstream connection, in seconds.
    """

    def __init__(
        self,
        upstream: str,
        *,
        seed: int | None = None,
        host: str = "127.0.0.1",
        strip_compression: bool = True,
        toxics: Sequence[ToxicSpec | Toxic] = (),
        name: str = "chaos",
        connect_timeout: float = 5.0,
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"ChaosProxy listens on loopback only, got host {host!r}")
        self._upstream = parse_upstream(upstream)
        self.upstream = upstream
        self.host = host
        self.port = 0
        self.name = name
        self.seed: int = secrets.randbits(32) if seed is None else int(seed)
        self.strip_compression = strip_compression
        self.connect_timeout = connect_timeout
        self.decisions: list[FaultDecision] = []
        self._toxics: tuple[Toxic, ...] = ()
        self._message_faults: tuple[MessageFault, ...] = ()
        self._generation = 0
        self._keys = 0
        self._fault_numbers = 0
        self._live: dict[int, ProxyConnection] = {}
        self._accepted = 0
        self._refused = 0
        self._bytes_up = 0
        self._bytes_down = 0
        self._faults_applied: Counter[str] = Counter()
        # For the end-of-test verdict (`nothing_checked`): everything ever armed (removed
        # ones included), what each message fault did, and whose predicate raised.
        self._armed_faults: dict[str, MessageFault] = {}
        self._armed_toxics: dict[str, None] = {}
        self._applied_by_fault: Counter[str] = Counter()
        self._predicate_errors: dict[str, tuple[int, str]] = {}
        self._server: asyncio.Server | None = None
        # The kernel fast path of idle bytes-only lanes (`chaos.splice`); off only to
        # measure it (benchmarks/chaos_proxy.py) or to compare the two paths in tests.
        self._fast_path = True
        self._is_down = False
        self._started = False
        for spec in toxics:
            self.add_toxic(
                spec.kind,
                stream=spec.stream,
                toxicity=spec.toxicity,
                name=spec.name,
                target=spec.target,
                **spec.attributes,
            )

    def __repr__(self) -> str:
        return redact(
            f"<ChaosProxy {self.name} {self.url or '(not started)'} -> {self.upstream} "
            f"seed={self.seed} toxics={len(self._toxics)} "
            f"message_faults={len(self._message_faults)} live={len(self._live)}>"
        )

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where clients connect: the upstream URL with the proxy's host and port."""
        if not self.port:
            return ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self._upstream.scheme == "tcp":
            return f"tcp://{host}:{self.port}"
        return f"{self._upstream.scheme}://{host}:{self.port}{self._upstream.target}"

    @property
    def websocket_aware(self) -> bool:
        """Whether message faults work (a ``ws://`` upstream, parsed by the message layer)."""
        return self._upstream.scheme == "ws"

    async def start(self) -> Self:
        """Listen on a free port (or the port of a previous start). Idempotent."""
        if self._started:
            return self
        self._started = True
        await self._listen()
        return self

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientSide(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self, timeout: float) -> None:  # noqa: ASYNC109
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await server.wait_closed()

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Stop listening and close every connection; bounded by ``timeout``. Idempotent."""
        self._is_down = True
        await self._cut_all(timeout / 2)
        await self._close_listener(timeout / 2)
        self._started = False

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _cut_all(self, timeout: float) -> None:  # noqa: ASYNC109
        conns = list(self._live.values())
        for conn in conns:
            conn._shutdown("abort")
        tasks = [c._connecting for c in conns if c._connecting and not c._connecting.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def down(self) -> None:
        """Cut every live connection now and refuse new ones (connection refused) until `up`."""
        self._is_down = True
        await self._close_listener(1.0)
        await self._cut_all(1.0)

    async def up(self) -> None:
        """Listen again on the same port after `down`."""
        if not self._is_down or not self._started:
            return
        self._is_down = False
        await self._listen()

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """Down inside the block, up after it (always, even on error)."""
        await self.down()
        try:
            yield
        finally:
            await self.up()

    @property
    def connections(self) -> tuple[ProxyConnection, ...]:
        """The live connections, in accept order."""
        return tuple(self._live[i] for i in sorted(self._live))

    def connection(self, index: int) -> ProxyConnection | None:
        """The live connection number ``index`` (1-based), if it is still open."""
        return self._live.get(index)

    def _forget(self, conn: ProxyConnection) -> None:
        self._live.pop(conn.index, None)

    def _accepted_connection(self, client: asyncio.Transport) -> ProxyConnection:
        """A socket was accepted: number it, roll its toxics, open its upstream."""
        self._accepted += 1
        client.pause_reading()  # nothing flows before the upstream socket exists
        conn = ProxyConnection(self, self._accepted, client)
        if self._is_down:
            conn._shutdown("reset")
            return conn
        for toxic in self._toxics:
            if toxic.kind in CONNECTION_KINDS and toxic.target in (None, conn.index):
                if conn._roll(toxic):
                    self._refused += 1
                    conn._shutdown("reset" if toxic.kind == "refuse" else "close")
                    return conn
        self._live[conn.index] = conn
        conn._sync_toxics(self._toxics)  # armed toxics apply from the first byte
        conn._connecting = asyncio.get_running_loop().create_task(
            conn._connect_upstream(), name=f"{conn.id}-connect"
        )
        return conn

    # -- toxics ---------------------------------------------------------------------------

    @property
    def toxics(self) -> tuple[Toxic, ...]:
        return self._toxics

    def _find_toxic(self, toxic: Toxic | str) -> Toxic:
        name = toxic if isinstance(toxic, str) else toxic.name
        for armed in self._toxics:
            if armed.name == name:
                return armed
        raise KeyError(f"no toxic named {name!r} on {self.name}")

    def _changed(self) -> None:
        self._generation += 1
        for conn in self.connections:
            conn._sync_toxics(self._toxics)

    def add_toxic(
        self,
        kind: str,
        *,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
        target: int | None = None,
        **attributes: Any,
    ) -> Toxic:
        """Arm a toxic; it acts from the next chunk of every connection it applies to.

        Raises:
            ValueError: bad kind, stream, attribute, toxicity or target, or a name taken.
        """
        name = name or default_toxic_name(kind, stream, target)
        if any(t.name == name for t in self._toxics):
            raise ValueError(
                f"a toxic named {name!r} is already armed on {self.name}; pass name=... "
                "to add another of that kind"
            )
        self._keys += 1
        toxic = build_toxic(
            kind,
            stream=stream,
            toxicity=toxicity,
            name=name,
            target=target,
            attributes=attributes,
            key=self._keys,
        )
        self._toxics = (*self._toxics, toxic)
        self._armed_toxics[name] = None
        self._changed()
        return toxic

    def update_toxic(self, toxic: Toxic | str, **attributes: Any) -> Toxic:
        """Change attributes (or ``toxicity=``) of an armed toxic; the next chunk sees them.

        A toxicity change re-reads each connection's existing draw (never re-rolls it).
        """
        current = self._find_toxic(toxic)
        toxicity = attributes.pop("toxicity", None)
        new = current.updated(toxicity=toxicity, **attributes)
        self._toxics = tuple(new if t.key == current.key else t for t in self._toxics)
        self._changed()
        return new

    def remove_toxic(self, toxic: Toxic | str) -> None:
        """Disarm a toxic. Never blocks; bytes it was holding are released at once."""
        current = self._find_toxic(toxic)
        self._toxics = tuple(t for t in self._toxics if t.key != current.key)
        self._changed()
        for conn in self.connections:
            conn._toxic_removed(current)

    @contextlib.asynccontextmanager
    async def toxic(self, kind: str, **options: Any) -> AsyncIterator[Toxic]:
        """``async with proxy.toxic("latency", latency=50):`` armed inside, removed after."""
        armed = self.add_toxic(kind, **options)
        try:
            yield armed
        finally:
            if any(t.key == armed.key for t in self._toxics):
                self.remove_toxic(armed.name)

    # -- message faults -------------------------------------------------------------------

    @property
    def message_faults(self) -> tuple[MessageFault, ...]:
        return self._message_faults

    def add_message_fault(
        self,
        kind: str,
        *,
        direction: str = "downstream",
        select: Selector = None,
        toxicity: float = 1.0,
        name: str | None = None,
        target: int | None = None,
        expect_fire: bool = False,
        **attributes: Any,
    ) -> MessageFault:
        """Arm a WebSocket message fault (see `chaos.message_faults`); needs a ``ws://`` upstream.

        The frame faults are kinds of message fault too (``fragment``, ``corrupt``,
        ``oversize``: `chaos.frame_faults`), so they select, draw, target and report
        exactly as the others do.

        A fault that applies 0 times by the end of its test, or whose ``select``
        predicate raises, is reported then (`nothing_checked`): a warning, or a failure
        with ``expect_fire=True`` (or in a ``websocket_security`` test).

        Raises:
            ValueError: a bytes-only upstream, bad settings, or a name taken.
        """
        if not self.websocket_aware:
            raise ValueError(
                f"message faults need a ws:// upstream; {self.name} proxies {self.upstream!r} "
                "as bytes only"
            )
        self._fault_numbers += 1
        name = name or f"{kind}#{self._fault_numbers}"
        if any(f.name == name for f in self._message_faults):
            raise ValueError(f"a message fault named {name!r} is already armed on {self.name}")
        fault = MessageFault(
            kind,
            direction=direction,  # type: ignore[arg-type]  # validated by MessageFault
            select=select,
            toxicity=toxicity,
            name=name,
            attributes=attributes,
            target=target,
            expect_fire=expect_fire,
        )
        self._message_faults = (*self._message_faults, fault)
        self._armed_faults[name] = fault
        return fault

    def remove_message_fault(self, fault: MessageFault | str) -> None:
        """Disarm a message fault; the next message is no longer affected. Never blocks."""
        name = fault if isinstance(fault, str) else fault.name
        if not any(f.name == name for f in self._message_faults):
            raise KeyError(f"no message fault named {name!r} on {self.name}")
        self._message_faults = tuple(f for f in self._message_faults if f.name != name)
        # A message a removed reorder fault was holding goes out now, not with the next
        # bytes of its direction (which may never come on a quiet connection).
        for conn in self._live.values():
            conn._faults_changed()

    @contextlib.asynccontextmanager
    async def message_fault(self, kind: str, **options: Any) -> AsyncIterator[MessageFault]:
        """``async with proxy.message_fault("drop", select=2):`` armed inside, removed after."""
        armed = self.add_message_fault(kind, **options)
        try:
            yield armed
        finally:
            if any(f.name == armed.name for f in self._message_faults):
                self.remove_message_fault(armed.name)

    def _message_filter(self, conn: ProxyConnection, direction: str) -> MessageFilter | None:
        if not self.websocket_aware:
            return None
        index = conn.index

        def faults() -> tuple[MessageFault, ...]:
            armed = self._message_faults
            if not armed:
                return armed
            return tuple(f for f in armed if f.target is None or f.target == index)

        return MessageFilter(
            direction,  # type: ignore[arg-type]  # one of DIRECTIONS
            connection=index,
            faults=faults,
            rng=derive_rng(self.seed, "messages", index, direction),
            record=self._record,
            strip_compression=self.strip_compression,
        )

    # -- records --------------------------------------------------------------------------

    def _record(self, decision: FaultDecision) -> None:
        self.decisions.append(decision)
        # Counted: faults applied. Not counted: rolls, and the follow-ups of a fault
        # already counted (a held message released, frames dropped after a close, the
        # pong answering a ping put between fragments).
        outcome = decision.outcome
        if outcome not in ("enabled", "disabled", "kept", "skipped") and not outcome.startswith(
            ("released", "dropped after the injected close", "pong answered")
        ):
            fault = self._armed_faults.get(decision.subject)  # named faults too
            kind = fault.kind if fault is not None else decision.subject.split("#", 1)[0]
            self._faults_applied[kind] += 1
            self._applied_by_fault[decision.subject] += 1
        elif outcome == "skipped" and PREDICATE_RAISED in decision.detail:
            count, first = self._predicate_errors.get(decision.subject, (0, str(decision)))
            self._predicate_errors[decision.subject] = (count + 1, first)

    def nothing_checked(self) -> list[NothingChecked]:
        """What this proxy was armed with and never exercised, at the end of a test.

        Every message fault that applied 0 times or whose predicate raised
        (`chaos.message_faults.fault_findings`), and, when the proxy accepted no
        connection at all, every toxic armed on it. The plugin turns these into
        warnings (`WsChaosWarning`) or failures (``expect_fire=True``, strict tests).
        """
        findings = fault_findings(
            self.name,
            self._armed_faults.values(),
            applied=self._applied_by_fault,
            predicate_errors=self._predicate_errors,
            connections=self._accepted,
        )
        if not self._accepted:
            findings.extend(
                NothingChecked(
                    "chaos",
                    f"toxic {name} on {self.name}",
                    "the proxy accepted no connection (connect through proxy.url)",
                )
                for name in self._armed_toxics
            )
        return findings

    @property
    def stats(self) -> dict[str, Any]:
        """Connections accepted and refused, bytes each way, faults applied by kind."""
        return {
            "connections": self._accepted,
            "live": len(self._live),
            "refused": self._refused,
            "bytes_upstream": self._bytes_up,
            "bytes_downstream": self._bytes_down,
            "faults": dict(self._faults_applied),
            "seed": self.seed,
        }
