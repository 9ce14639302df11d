"""One proxied connection: a client socket, its upstream socket and two lanes between.

Each connection a `ChaosProxy` accepts opens one upstream connection; its two directions
(upstream: client -> server, downstream: server -> client) are *lanes*. Bytes read in
one direction go to the WebSocket message layer (`chaos.message_filter.MessageFilter`,
for ``ws://`` upstreams), then to the byte toxics of that direction
(`chaos.timing.StreamShaper`), which give each piece a release time; one timer per lane,
armed for the earliest piece, writes everything due when it fires. The timing is
deadline-based, so latency never caps throughput and a late timer never pushes later
bytes past their deadlines. It all runs in asyncio protocol callbacks (no task per
chunk), on the test's own loop, so the control API stays synchronous. A bytes-only lane
with nothing armed or held goes faster still: splice(2) moves its bytes in kernel
(`chaos.splice`), switched off before a toxic for its direction is armed
(`benchmarks/chaos_proxy.py` measures both lanes against a direct connection).

The connection also owns what acts on it as a whole: the once-per-connection toxicity
roll of each toxic, the timers of ``timeout``, ``reset_peer``, ``idle_timeout`` and
``max_lifetime`` (`chaos.clocks`: the lanes stamp each chunk read for the idle clock,
on both paths), ``slow_close``, and the ways it ends (FIN, abort, RST).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from pytest_ws_resilience.chaos.clocks import ConnectionClocks
from pytest_ws_resilience.chaos.message_filter import Abort, Emit, MessageFilter
from pytest_ws_resilience.chaos.seeds import FaultDecision, derive_rng
from pytest_ws_resilience.chaos.sides import Side
from pytest_ws_resilience.chaos.splice import SUPPORTED as SPLICE_SUPPORTED
from pytest_ws_resilience.chaos.splice import Splicer
from pytest_ws_resilience.chaos.timing import StreamShaper, toxicity_draw
from pytest_ws_resilience.chaos.toxics import (
    CONNECTION_KINDS,
    HOLDING_KINDS,
    SHAPING_KINDS,
    Toxic,
)
from pytest_ws_resilience.chaos.upstream import Upstream

__all__ = [
    "ConnectionOwner",
    "ProxyConnection",
]

DIRECTIONS: Final = ("upstream", "downstream")
#: A lane holding more than this (latency x throughput, or a slow bandwidth toxic) stops
#: reading its source, so TCP backpressure reaches the sender instead of our memory.
HIGH_WATER: Final = 4 * 1024 * 1024
#: The transports' own write buffer limit: asyncio's 64 KiB default pauses and resumes
#: the source every few chunks under bulk traffic, which costs throughput for nothing.
WRITE_BUFFER_HIGH: Final = 1024 * 1024
LOW_WATER: Final = 1024 * 1024
_LINGER_RST: Final = struct.pack("ii", 1, 0)


def _set_rst(transport: asyncio.BaseTransport | None) -> None:
    """Make the next close send RST instead of FIN (SO_LINGER with a zero timeout)."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)


class ConnectionOwner(Protocol):
    """What a connection uses of the proxy that accepted it (`ChaosProxy` is the one).

    A protocol rather than an import, so that this module does not import the proxy
    module that imports it. The members are the proxy's private state and hooks: the
    armed toxics (swapped as a whole, ``_generation`` counts the swaps), the counters of
    ``stats``, the decision log and the message filter factory.
    """

    name: str
    seed: int
    connect_timeout: float
    _upstream: Upstream
    _toxics: tuple[Toxic, ...]
    _generation: int
    _bytes_up: int
    _bytes_down: int
    _faults_applied: Counter[str]
    _fast_path: bool

    def _record(self, decision: FaultDecision) -> None: ...

    def _message_filter(self, conn: ProxyConnection, direction: str) -> MessageFilter | None: ...

    def _accepted_connection(self, client: asyncio.Transport) -> ProxyConnection: ...

    def _forget(self, conn: ProxyConnection) -> None: ...


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

    A bytes-only lane with nothing armed or held is ``spliced``: a `chaos.splice.Splicer`
    moves its bytes in kernel. A toxic armed for the direction turns that off before
    `add_toxic` returns (`retoxed`), so the next chunk read is shaped; the lane goes back
    to it once idle (checked per chunk, on each toxic change, when the upstream connects).
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
        self.can_splice = False  # set on connect: a bytes-only lane where splice(2) exists
        self.spliced = False
        self.splicer: Splicer | None = None

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
        self.splice_if_idle()

    def count(self, size: int) -> None:
        """``size`` bytes read from the source: the connection's and the proxy's counters,
        and the idle clock (the splice fast path reports its reads here too)."""
        conn = self.conn
        if conn._clocks.watching:
            conn._clocks.active()
        if self.direction == "upstream":
            conn.bytes_up += size
            conn.proxy._bytes_up += size
        else:
            conn.bytes_down += size
            conn.proxy._bytes_down += size

    # -- the kernel fast path (chaos.splice) ------------------------------------------------

    def splice_if_idle(self) -> None:
        """Turn the fast path on if this lane has nothing to do: nothing armed or held."""
        source, dest = self.source, self.dest
        if not self.can_splice or self.spliced or source is None or dest is None:
            return
        if self.stopped or self.conn.closed:
            return
        if self.pending or self.source_paused or self.dest_paused or source.is_closing():
            return  # something is held, or backpressure is on: the timer path drains it
        if dest.is_closing() or dest.get_write_buffer_size():
            return  # bytes the transport holds must not be overtaken
        if self.conn._shaping_toxics(self.direction):
            return
        if self.splicer is None:
            try:
                self.splicer = Splicer(
                    self.loop,
                    source,
                    dest,
                    on_bytes=self.count,
                    on_end=self.unsplice,
                    on_error=lambda: self.conn._shutdown("abort"),
                )
            except OSError:
                self.can_splice = False  # too many open, or no descriptors: transport path
                return
        self.spliced = True
        self.splicer.start()

    def unsplice(self) -> None:
        """Back to the transport path, now: what the pipe held is written first."""
        if self.spliced and self.splicer is not None:
            self.spliced = False
            self.splicer.hand_back()

    def retoxed(self) -> None:
        """The armed toxics changed: off the fast path if one now applies, else try it."""
        if not self.can_splice:
            return
        if self.spliced and self.conn._shaping_toxics(self.direction):
            self.unsplice()
        elif not self.spliced:
            self.splice_if_idle()

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
        if source is None or source.is_closing() or self.spliced:
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

    def cancel(self, flush: bool = False) -> None:
        """Stop the timer and the fast path; ``flush``: write what the pipe held first."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.spliced = False
        if self.splicer is not None:
            self.splicer.close(flush)


class ProxyConnection:
    """One proxied connection: a client socket, its upstream socket, two lanes.

    ``index`` is 1-based in accept order (what ``target=`` names); ``bytes_up`` and
    ``bytes_down`` count what the proxy read from the client and from the server.
    """

    def __init__(self, proxy: ConnectionOwner, index: int, client: asyncio.Transport) -> None:
        self.proxy = proxy
        self.index = index
        self.id = f"{proxy.name}-{index}"
        peer = client.get_extra_info("peername")
        self.client_address: tuple[str, int] | None = tuple(peer[:2]) if peer else None
        self.opened_at = time.monotonic()
        self.bytes_up = 0
        self.bytes_down = 0
        self.closed = False
        self._client = client
        self._server: asyncio.Transport | None = None
        self._lanes = {d: _Lane(self, d) for d in DIRECTIONS}
        self._lanes["upstream"].source = client
        self._lanes["downstream"].dest = client
        self._connecting: asyncio.Task[None] | None = None
        self._draws: dict[int, float] = {}
        self._enabled: dict[int, bool] = {}
        self._clocks = ConnectionClocks(self._lanes["upstream"].loop, self._shutdown)
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
                FaultDecision(
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

    def _sync_toxics(self, toxics: Sequence[Toxic]) -> None:
        """Roll new toxics, start timers of armed ones, cancel those of removed ones."""
        if self.closed:
            return
        mine = [
            t for t in toxics if t.kind not in CONNECTION_KINDS and t.target in (None, self.index)
        ]
        keys = {t.key for t in mine}
        self._clocks.sync(mine, self._roll)
        for lane in self._lanes.values():
            lane.shaper.forget(keys)
            lane.retoxed()

    def _toxic_removed(self, toxic: Toxic) -> None:
        """A toxic was disarmed: what it was holding in this connection goes out now."""
        if toxic.kind not in HOLDING_KINDS:
            return
        for direction, lane in self._lanes.items():
            if toxic.applies_to(direction, self.index):
                lane.flush()

    def _faults_changed(self) -> None:
        """The message faults changed: forward what the filters no longer hold back."""
        for lane in self._lanes.values():
            lane.refresh()

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
                    lambda: Side(self, lanes["downstream"], lanes["upstream"]), up.host, up.port
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
        for lane in lanes.values():
            lane.can_splice = SPLICE_SUPPORTED and proxy._fast_path and lane.filter is None
            lane.splice_if_idle()

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
        self._clocks.cancel()
        for lane in self._lanes.values():
            lane.cancel(flush=how == "close")
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
