"""The forwarding fast path of a lane with nothing to do: splice(2), kernel to kernel.

A toxic-free proxy on the client's own interpreter costs what its socket work costs:
read a chunk into a Python ``bytes``, write it out again, twice per round trip. Measured
(`benchmarks/chaos_proxy.py`), that copying, not the Python around it, is where a
bytes-only lane spent its time. When a lane has no byte toxic to apply and no message
layer to feed (a ``tcp://`` or ``wss://`` upstream), a `Splicer` moves its bytes
socket -> pipe -> socket with ``os.splice``: the payload never enters the interpreter,
and each readiness callback moves up to a pipe's worth (1 MiB where the system allows).

The lane (`chaos.connection`) owns the switching; this module only moves bytes:

- on: the lane pauses its source transport (its reader leaves the event loop) and the
  splicer watches duplicates of the two sockets' descriptors (a transport's own
  descriptor may not be watched twice); the destination transport's write buffer is
  empty, so no byte the transport holds can be overtaken;
- off (`Splicer.stop`, synchronous): the splicer unwatches, reads what the pipe still
  holds (bytes read before the switch, so they go out first and unshaped, as they would
  have from the transport's write buffer) and the lane resumes its source transport,
  whose next chunk meets whatever was just armed;
- end of stream or a read error: the splicer hands back to the transport (``on_end``),
  which then reads the EOF or the error itself, so FIN, half-close, ``slow_close`` and
  resets behave exactly as without the fast path; a write error aborts (``on_error``),
  as the transport's own failed write would.

Linux only (`SUPPORTED`); elsewhere lanes keep the transport path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sys
from collections.abc import Callable
from typing import Final

__all__ = ["MAX_LIVE", "PIPE_SIZE", "SUPPORTED", "Splicer"]

#: Whether the fast path exists here: ``os.splice`` (Linux, Python 3.10+).
SUPPORTED: Final = sys.platform == "linux" and hasattr(os, "splice")
#: The pipe between the two sockets, and so the most one readiness callback moves. The
#: kernel caps it (``/proc/sys/fs/pipe-max-size``); a refusal keeps its 64 KiB default.
PIPE_SIZE: Final = 1024 * 1024
#: At most this many splicers at once in a process (each holds 4 descriptors: its pipe
#: and two duplicates); lanes beyond it take the transport path, so a proxy with many
#: connections never spends the descriptor limit its listener and sockets need.
MAX_LIVE: Final = 64
_F_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_FLAGS: Final = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


class Splicer:
    """Moves one lane's bytes from ``source`` to ``dest`` through a pipe, in kernel.

    Args:
        loop: the proxy's event loop.
        source: the transport the lane reads (its socket's descriptor is duplicated).
        dest: the transport the lane writes (likewise).
        on_bytes: called with the size of each chunk read (the proxy's byte counters).
        on_end: the source hit EOF or a read error: hand the lane back to its transport.
        on_error: writing failed (the peer is gone): abort the connection.

    Raises:
        OSError: `MAX_LIVE` splicers are open, or no descriptors are left for the pipe
            or the duplicates (the lane then keeps the transport path).
    """

    live = 0  # open splicers in this process

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        source: asyncio.Transport,
        dest: asyncio.Transport,
        *,
        on_bytes: Callable[[int], None],
        on_end: Callable[[], None],
        on_error: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._source = source
        self._dest = dest
        self._on_bytes = on_bytes
        self._on_end = on_end
        self._on_error = on_error
        if Splicer.live >= MAX_LIVE:
            raise OSError(f"{MAX_LIVE} splice fast paths already open")
        fds: list[int] = []
        try:
            fds.extend(os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC))
            fds.append(os.dup(source.get_extra_info("socket").fileno()))
            fds.append(os.dup(dest.get_extra_info("socket").fileno()))
        except (OSError, AttributeError):
            for fd in fds:
                os.close(fd)
            raise OSError("no descriptors for the splice fast path") from None
        self._pipe_r, self._pipe_w, self._src, self._dst = fds
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._pipe_w, _F_SETPIPE_SZ, PIPE_SIZE)
        self._held = 0  # bytes in the pipe
        self._reading = False
        self._writing = False
        self._closed = False
        self.running = False
        Splicer.live += 1

    # -- switching ------------------------------------------------------------------------

    def start(self) -> None:
        """Begin forwarding: the source transport stops reading, the splicer reads."""
        if self._closed or self.running:
            return
        self._source.pause_reading()
        self.running = True
        self._watch_source(True)

    def hand_back(self) -> None:
        """Stop forwarding; the transports take over, the pipe's bytes written first."""
        if not self.running:
            return
        held = self.stop()
        self._source.resume_reading()
        if held and not self._dest.is_closing():
            self._dest.write(held)

    def stop(self) -> bytes:
        """Stop forwarding now; return what the pipe still held, for the caller to write."""
        self.running = False
        self._watch_source(False)
        self._watch_dest(False)
        held = bytearray()
        while self._held > 0:
            try:
                data = os.read(self._pipe_r, self._held)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            held += data
            self._held -= len(data)
        self._held = 0
        return bytes(held)

    def close(self, flush: bool) -> None:
        """Stop and release the descriptors (``flush``: write what the pipe held first)."""
        if self._closed:
            return
        held = self.stop()
        if flush and held and not self._dest.is_closing():
            self._dest.write(held)
        self._closed = True
        Splicer.live -= 1
        for fd in (self._pipe_r, self._pipe_w, self._src, self._dst):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- moving ---------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            size = os.splice(self._src, self._pipe_w, PIPE_SIZE, flags=_FLAGS)
        except BlockingIOError:
            return
        except OSError:
            size = 0  # the transport will read the error itself
        if not size:
            self._end()
            return
        self._held += size
        self._on_bytes(size)
        self._drain()

    def _drain(self) -> None:
        while self._held:
            try:
                size = os.splice(self._pipe_r, self._dst, self._held, flags=_FLAGS)
            except BlockingIOError:
                # The destination is full: stop reading (TCP backpressure reaches the
                # sender) until it takes more.
                self._watch_source(False)
                self._watch_dest(True)
                return
            except OSError:
                self.stop()
                self._on_error()
                return
            self._held -= size
        self._watch_dest(False)
        if self.running:
            self._watch_source(True)

    def _end(self) -> None:
        # What the pipe still holds goes out through the transport (see `stop`).
        self._watch_source(False)
        self._on_end()

    def _watch_source(self, on: bool) -> None:
        if on == self._reading or self._closed:
            return
        self._reading = on
        if on:
            self._loop.add_reader(self._src, self._readable)
        else:
            self._loop.remove_reader(self._src)

    def _watch_dest(self, on: bool) -> None:
        if on == self._writing or self._closed:
            return
        self._writing = on
        if on:
            self._loop.add_writer(self._dst, self._drain)
        else:
            self._loop.remove_writer(self._dst)
