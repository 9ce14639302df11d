"""`ChaosProxy`: an in-process asyncio TCP proxy with toxics, between client and server.

Each accepted connection opens one upstream connection; its two directions (upstream:
client -> server, downstream: server -> client) are *lanes*. Bytes read in one direction
go to the WebSocket message layer (`chaos.messages.MessageFilter`, for ``ws://``
upstreams), then to the byte toxics of that direction (`chaos.scheduling.StreamShaper`),
which give each piece a release time; one timer per lane, armed for the earliest piece,
writes everything due when it fires. The timing is deadline-based, so latency never caps
throughput and a late timer never pushes later bytes past their deadlines. It all runs in
asyncio protocol callbacks (no task per chunk), which is what keeps a toxic-free proxy
close to a direct connection's throughput (`benchmarks/chaos_proxy.py`).

What the design answers (the complaints about byte proxies this one is built against):

- atomic arming: toxics given to the constructor (or added before the first connection)
  apply to every connection from its first byte;
- no locks, no awaits: the toxic set is an immutable tuple swapped on change and read
  per chunk, so adding, updating or removing a toxic never blocks, even
  under heavy traffic;
- toxicity is drawn once per (connection, toxic) from the proxy's seed and recorded as a
  `Decision`; a disabled toxic has no effect at all (a disabled ``reset_peer`` never
  resets), and a seed replays the same decisions;
- per-connection targeting (``target=N``) and WebSocket-aware message faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

from pytest_ws_resilience.chaos.messages import Abort, Emit, MessageFault, MessageFilter, Selector
from pytest_ws_resilience.chaos.timing import (
    Decision,
    StreamShaper,
    derive_rng,
    toxicity_draw,
)
from pytest_ws_resilience.chaos.toxics import (
    CONNECTION_KINDS,
    Toxic,
    ToxicSpec,
    build_toxic,
    default_toxic_name,
)
from pytest_ws_resilience.loopback import is_loopback_host
from pytest_ws_resilience.redaction import redact

__all__ = ["ChaosProxy", "ProxyConnection"]

DIRECTIONS: Final = ("upstream", "downstream")
#: A lane holding more than this (latency x throughput, or a slow bandwidth toxic) stops
#: reading its source, so TCP backpressure reaches the sender instead of our memory.
HIGH_WATER: Final = 4 * 1024 * 1024
#: The transports' own write buffer limit: asyncio's 64 KiB default pauses and resumes
#: the source every few chunks under bulk traffic, which costs throughput for nothing.
WRITE_BUFFER_HIGH: Final = 1024 * 1024
LOW_WATER: Final = 1024 * 1024
#: Kinds applied to bytes; the rest act on the connection (timers, close).
SHAPING_KINDS: Final = frozenset({"latency", "bandwidth", "slicer", "timeout", "limit_data"})
HOLDING_KINDS: Final = frozenset({"latency", "bandwidth", "slicer"})
_LINGER_RST: Final = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class _Upstream:
    scheme: str  # "ws", "wss" or "tcp"
    host: str
    port: int
    target: str  # path and query, "" for tcp


def _parse_upstream(upstream: str) -> _Upstream:
    text = upstream if "://" in upstream else f"tcp://{upstream}"
    parts = urlsplit(text)
    scheme = parts.scheme
    if scheme not in ("ws", "wss", "tcp"):
        raise ValueError(f"chaos upstream must be ws://, wss:// or host:port, got {upstream!r}")
    host = parts.hostname or ""
    if not is_loopback_host(host):
        raise ValueError(f"chaos upstream must be a loopback address, got {host or upstream!r}")
    try:
        port = parts.port or {"ws": 80, "wss": 443}.get(scheme)
    except ValueError:
        port = None
    if not port:
        raise ValueError(f"chaos upstream needs a port, got {upstream!r}")
    target = ""
    if scheme != "tcp":
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Upstream(scheme, host, port, target)


def _set_rst(transport: asyncio.BaseTransport | None) -> None:
    """Make the next close send RST instead of FIN (SO_LINGER with a zero timeout)."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)


class _Item:
    __slots__ = ("action", "at", "data")

    def __init__(self, at: float, data: bytes, action: Callable[[], None] | None = None) -> None:
        self.at = at
        self.data = data
        self.action = action


class _Lane:
    """One direction of one connection: its source, its destination, what is held.

    Everything runs in transport callbacks: bytes arrive in ``data_received``, go straight
    to the destination when nothing is armed or held (the fast path), otherwise they are
    shaped into pieces with release times and written by one timer armed for the earliest
    piece (`loop.call_at`), which writes everything due when it fires. Backpressure: the
    source stops reading while the destination's buffer is full or more than `HIGH_WATER`
    bytes are held.
    """

    def __init__(self, conn: ProxyConnection, direction: str) -> None:
        self.conn = conn
        self.direction = direction
        self.loop = asyncio.get_running_loop()
        self.source: asyncio.Transport | None = None
        self.dest: asyncio.Transport | None = None
        self.filter: MessageFilter | None = None
        self.shaper = StreamShaper(conn._rng_for_toxic(direction))
        self.pending: deque[_Item] = deque()
        self.pending_bytes = 0
        self.last_at = float("-inf")
        self.timer: asyncio.TimerHandle | None = None
        self.dest_paused = False
        self.source_paused = False
        self.stopped = False  # no more input accepted (EOF seen or aborted by a fault)
        self.done = False

    # -- input -------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.stopped or self.conn.closed:
            return
        arrival = self.loop.time()
        if self.filter is None:
            self.forward(data, arrival)
        else:
            self._emit(self.filter.feed(data), arrival)
        self._flow()

    def refresh(self) -> None:
        """Message faults changed: forward what the filter no longer holds back."""
        if self.filter is None or self.stopped or self.conn.closed:
            return
        self._emit(self.filter.refresh(), self.loop.time())
        self._flow()

    def _emit(self, outputs: list[Emit | Abort], arrival: float) -> None:
        for out in outputs:
            if isinstance(out, Abort):
                # Drop both sides (no close frame) once what came before is written.
                self.stopped = True
                self.push(arrival, b"", self.conn._abort_after_flush)
                return
            self.forward(out.data, arrival + out.delay)

    def forward(self, data: bytes, arrival: float) -> None:
        toxics = self.conn._shaping_toxics(self.direction)
        if not toxics and not self.pending and self.dest is not None:
            if arrival <= self.loop.time():
                self.dest.write(data)  # the fast path: nothing armed, nothing held
                return
        shaped = self.shaper.shape(arrival, data, toxics)
        for piece in shaped.pieces:
            self.push(piece.at, piece.data)
        if shaped.close:
            self.stopped = True
            self.push(arrival, b"", self.conn._close_gracefully)

    def eof_received(self) -> None:
        """The source ended: after what is held (and any slow_close delay), FIN onward."""
        if self.stopped or self.conn.closed:
            return
        self.stopped = True
        delay = self.conn._slow_close_s(self.direction)
        self.push(self.loop.time() + delay, b"", self._eof)

    # -- output ------------------------------------------------------------------------------

    def push(self, at: float, data: bytes, action: Callable[[], None] | None = None) -> None:
        # Release times never go backwards: bytes of one TCP stream stay in order.
        at = max(at, self.last_at)
        self.last_at = at
        self.pending.append(_Item(at, data, action))
        self.pending_bytes += len(data)
        if self.timer is None:
            self._arm()

    def _arm(self) -> None:
        if self.pending and not self.conn.closed:
            self.timer = self.loop.call_at(self.pending[0].at, self._release)

    def _release(self) -> None:
        self.timer = None
        now = self.loop.time()
        dest = self.dest
        pending = self.pending
        while pending and pending[0].at <= now:
            item = pending.popleft()
            self.pending_bytes -= len(item.data)
            if item.action is not None:
                item.action()
                if self.conn.closed or self.done:
                    return
            elif item.data and dest is not None:
                dest.write(item.data)
        self._arm()
        self._flow()

    def flush(self) -> None:
        """Release what is held now (a holding toxic was removed)."""
        now = self.loop.time()
        for item in self.pending:
            item.at = min(item.at, now)
        self.last_at = min(self.last_at, now)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._arm()

    def _eof(self) -> None:
        self.done = True
        dest = self.dest
        if dest is not None and not dest.is_closing() and dest.can_write_eof():
            with contextlib.suppress(OSError):
                dest.write_eof()
        self.conn._lane_done()

    # -- flow control ------------------------------------------------------------------------

    def _flow(self) -> None:
        source = self.source
        if source is None or source.is_closing():
            return
        held = self.pending_bytes > (LOW_WATER if self.source_paused else HIGH_WATER)
        should_pause = self.dest_paused or held
        if should_pause != self.source_paused:
            self.source_paused = should_pause
            if should_pause:
                source.pause_reading()
            else:
                source.resume_reading()

    def pause_writing(self) -> None:
        self.dest_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.dest_paused = False
        self._flow()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _Side(asyncio.Protocol):
    """The protocol of one socket: its reads feed ``source_of``, its flow control
    pauses the lane that writes into it."""

    def __init__(self, conn: ProxyConnection, source_of: _Lane, dest_of: _Lane) -> None:
        self.conn = conn
        self.source_of = source_of
        self.dest_of = dest_of
        self.upstream = source_of.direction == "upstream"

    def data_received(self, data: bytes) -> None:
        size = len(data)
        if self.upstream:
            self.conn.bytes_up += size
            self.conn.proxy._bytes_up += size
        else:
            self.conn.bytes_down += size
            self.conn.proxy._bytes_down += size
        self.source_of.data_received(data)

    def eof_received(self) -> bool:
        self.source_of.eof_received()
        return True  # keep the socket open: half-close, the other way may still talk

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.conn.closed:
            self.conn._shutdown("abort")  # only errors get here before we close

    def pause_writing(self) -> None:
        self.dest_of.pause_writing()

    def resume_writing(self) -> None:
        self.dest_of.resume_writing()


class _ClientSide(_Side):
    """The accepted socket: creates the connection and opens its upstream."""

    def __init__(self, proxy: ChaosProxy) -> None:
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        conn = self.proxy._accepted_connection(transport)
        super().__init__(conn, conn._lanes["upstream"], conn._lanes["downstream"])

    def connection_lost(self, exc: Exception | None) -> None:
        if hasattr(self, "conn"):
            super().connection_lost(exc)


class ProxyConnection:
    """One proxied connection: a client socket, its upstream socket, two lanes.

    ``index`` is 1-based in accept order (what ``target=`` names); ``bytes_up`` and
    ``bytes_down`` count what the proxy read from the client and from the server.
    """

    def __init__(self, proxy: ChaosProxy, index: int, client: asyncio.Transport) -> None:
        self.proxy = proxy
        self.index = index
        self.id = f"{proxy.name}-{index}"
        peer = client.get_extra_info("peername")
        self.client_address: tuple[str, int] | None = tuple(peer[:2]) if peer else None
        self.opened_at = time.monotonic()
        self.bytes_up = 0
        self.bytes_down = 0
        self.closed = False
        self.how_closed = ""
        self._client = client
        self._server: asyncio.Transport | None = None
        self._lanes = {d: _Lane(self, d) for d in DIRECTIONS}
        self._lanes["upstream"].source = client
        self._lanes["downstream"].dest = client
        self._connecting: asyncio.Task[None] | None = None
        self._draws: dict[int, float] = {}
        self._enabled: dict[int, bool] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._cache_generation = -1
        self._cache: dict[str, tuple[Toxic, ...]] = {}
        self._lanes_done = 0
        self._finished = asyncio.Event()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<ProxyConnection {self.id} {state} up={self.bytes_up}B down={self.bytes_down}B>"

    # -- toxics --------------------------------------------------------------------------

    def _rng_for_toxic(self, direction: str) -> Callable[[Toxic], random.Random]:
        seed = self.proxy.seed
        return lambda toxic: derive_rng(seed, "shape", toxic.name, self.index, direction)

    def _roll(self, toxic: Toxic) -> bool:
        """Decide (once) whether ``toxic`` acts on this connection; record the decision."""
        draw = self._draws.get(toxic.key)
        if draw is None:
            draw = self._draws[toxic.key] = toxicity_draw(self.proxy.seed, toxic.name, self.index)
        enabled = draw < toxic.toxicity
        if self._enabled.get(toxic.key) != enabled:
            self._enabled[toxic.key] = enabled
            self.proxy._record(
                Decision(
                    self.index,
                    toxic.stream,
                    toxic.name,
                    "enabled" if enabled else "disabled",
                    f"{toxic.kind}, toxicity {toxic.toxicity}, draw {draw:.4f}",
                )
            )
            if enabled:
                self.proxy._faults_applied[toxic.kind] += 1
        return enabled

    def is_enabled(self, toxic: Toxic | str) -> bool:
        """Whether ``toxic`` acts on this connection (its toxicity roll came out enabled)."""
        armed = self.proxy._find_toxic(toxic)
        return self._enabled.get(armed.key, False)

    def _sync_toxics(self, toxics: Sequence[Toxic]) -> None:
        """Roll new toxics, start timers of armed ones, cancel those of removed ones."""
        if self.closed:
            return
        keys = set()
        for toxic in toxics:
            if toxic.kind in CONNECTION_KINDS:
                continue
            if toxic.target is not None and toxic.target != self.index:
                continue
            keys.add(toxic.key)
            if not self._roll(toxic) or toxic.key in self._timers:
                continue
            delay_ms = toxic["timeout"] if toxic.kind in ("timeout", "reset_peer") else 0
            if toxic.kind == "reset_peer" or (toxic.kind == "timeout" and delay_ms > 0):
                how = "reset" if toxic.kind == "reset_peer" else "close"
                loop = asyncio.get_running_loop()
                self._timers[toxic.key] = loop.call_later(
                    delay_ms / 1000, self._timer_fired, toxic.key, how
                )
        for key in set(self._timers) - keys:
            self._timers.pop(key).cancel()
        for lane in self._lanes.values():
            lane.shaper.forget(keys)

    def _timer_fired(self, key: int, how: str) -> None:
        self._timers.pop(key, None)
        self._shutdown(how)

    def _shaping_toxics(self, direction: str) -> tuple[Toxic, ...]:
        generation = self.proxy._generation
        if generation != self._cache_generation:
            self._cache = {
                d: tuple(
                    t
                    for t in self.proxy._toxics
                    if t.kind in SHAPING_KINDS
                    and t.applies_to(d, self.index)
                    and self._enabled.get(t.key, False)
                )
                for d in DIRECTIONS
            }
            self._cache_generation = generation
        return self._cache[direction]

    def _slow_close_s(self, direction: str) -> float:
        return max(
            (
                t["delay"] / 1000
                for t in self.proxy._toxics
                if t.kind == "slow_close"
                and t.applies_to(direction, self.index)
                and self._enabled.get(t.key, False)
            ),
            default=0.0,
        )

    # -- running ---------------------------------------------------------------------------

    async def _connect_upstream(self) -> None:
        """Open the upstream socket (bounded), then let the client's bytes flow."""
        proxy = self.proxy
        up = proxy._upstream
        loop = asyncio.get_running_loop()
        lanes = self._lanes
        for direction in DIRECTIONS:
            lanes[direction].filter = proxy._message_filter(self, direction)
        try:
            async with asyncio.timeout(proxy.connect_timeout):
                transport, _ = await loop.create_connection(
                    lambda: _Side(self, lanes["downstream"], lanes["upstream"]), up.host, up.port
                )
        except (OSError, TimeoutError):
            self._shutdown("close")
            return
        except asyncio.CancelledError:
            self._shutdown("abort")
            raise
        assert isinstance(transport, asyncio.Transport)
        if self.closed:  # cut (or timed out by a toxic) while connecting
            transport.abort()
            return
        self._server = transport
        lanes["upstream"].dest = transport
        lanes["downstream"].source = transport
        for side in (transport, self._client):
            side.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self._client.resume_reading()

    def _lane_done(self) -> None:
        self._lanes_done += 1
        if self._lanes_done >= 2:
            self._shutdown("close")

    def _close_gracefully(self) -> None:
        self._shutdown("close")

    def _abort_after_flush(self) -> None:
        # What was written before the abort must reach the peer: a transport with bytes
        # still buffered is closed (flush, then FIN), one with none is aborted at once.
        for transport in (self._client, self._server):
            if transport is not None and transport.get_write_buffer_size():
                transport.close()
        self._shutdown("abort")

    def _shutdown(self, how: str) -> None:
        """Close both sides now: ``close`` (FIN), ``abort`` or ``reset`` (RST)."""
        if self.closed:
            return
        self.closed = True
        self.how_closed = how
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for lane in self._lanes.values():
            lane.cancel()
        for transport in (self._client, self._server):
            if transport is None:
                continue
            if how == "reset":
                _set_rst(transport)
            if how == "close":
                transport.close()
            else:
                transport.abort()
        if self._connecting is not None and self._connecting is not asyncio.current_task():
            self._connecting.cancel()
        self.proxy._forget(self)
        self._finished.set()

    async def _wait_closed(self, timeout: float) -> None:  # noqa: ASYNC109
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._finished.wait()
                if self._connecting is not None and not self._connecting.done():
                    await asyncio.wait([self._connecting])

    async def cut(self) -> None:
        """Drop both sides at once, without a close frame (the WebSocket peer sees 1006)."""
        self._shutdown("abort")
        await self._wait_closed(1.0)

    async def reset(self) -> None:
        """Reset both sides with a real RST (SO_LINGER 0): the peers see ECONNRESET."""
        self._shutdown("reset")
        await self._wait_closed(1.0)


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
            them (see `chaos.messages`).
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
        self._upstream = _parse_upstream(upstream)
        self.upstream = upstream
        self.host = host
        self.port = 0
        self.name = name
        self.seed: int = secrets.randbits(32) if seed is None else int(seed)
        self.strip_compression = strip_compression
        self.connect_timeout = connect_timeout
        self.decisions: list[Decision] = []
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
        self._server: asyncio.Server | None = None
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
            lambda: _ClientSide(self), self.host, self.port, reuse_address=True
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
        if current.kind in HOLDING_KINDS:
            for conn in self.connections:
                for direction, lane in conn._lanes.items():
                    if current.applies_to(direction, conn.index):
                        lane.flush()

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
        **attributes: Any,
    ) -> MessageFault:
        """Arm a WebSocket message fault (see `chaos.messages`); needs a ``ws://`` upstream.

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
        )
        self._message_faults = (*self._message_faults, fault)
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
            for lane in conn._lanes.values():
                lane.refresh()

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

    def _record(self, decision: Decision) -> None:
        self.decisions.append(decision)
        # Counted: faults applied. Not counted: rolls, and the follow-ups of a fault
        # already counted (a held message released, frames dropped after a close).
        outcome = decision.outcome
        if outcome not in ("enabled", "disabled", "kept", "skipped") and not outcome.startswith(
            ("released", "dropped after the injected close")
        ):
            kind = decision.subject.split("#", 1)[0]
            self._faults_applied[kind] += 1

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

    def toxic_settings(self) -> list[Mapping[str, Any]]:
        """The armed toxics as plain mappings (for reports)."""
        return [
            MappingProxyType(
                {
                    "name": t.name,
                    "kind": t.kind,
                    "stream": t.stream,
                    "toxicity": t.toxicity,
                    "target": t.target,
                    **t.attributes,
                }
            )
            for t in self._toxics
        ]
