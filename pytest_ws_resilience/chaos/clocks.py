"""The timers that end one proxied connection at a time of its own.

Four toxics end a connection on a clock rather than on a byte: ``timeout`` (closes it
``timeout`` ms after taking effect), ``reset_peer`` (resets it), ``idle_timeout`` (drops it
after ``timeout`` ms without a byte either way, as a cloud load balancer does) and
``max_lifetime`` (drops it ``lifetime`` ms after it opened, as a proxy with a maximum
connection age does). `ConnectionClocks` keeps their timers for one connection
(`chaos.connection.ProxyConnection`); when are they due is `chaos.timing.drop_deadline`'s.

The idle clock costs the traffic one float store per chunk read, nothing more: the
lanes stamp `ConnectionClocks.last_active` (from the transports' reads and from the
splice(2) fast path's, `chaos.splice`, which reports every chunk it moves, so that path
stays on), and the one timer per toxic is armed for the deadline the last stamp
implies. When it fires, it re-reads the stamp: traffic since moved the deadline, so it
re-arms; none did, so the connection is dropped. Nothing is rescheduled per chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Final

from pytest_ws_resilience.chaos.timing import drop_deadline
from pytest_ws_resilience.chaos.toxics import CLOCK_KINDS, Toxic

__all__ = ["ConnectionClocks"]

#: How a firing toxic ends the connection (`ProxyConnection._shutdown`'s ``how``). A
#: load balancer's idle or age limit drops both sides: the WebSocket peers see 1006.
_HOW: Final = {"timeout": "close", "reset_peer": "reset", "idle_timeout": "abort"}


class ConnectionClocks:
    """The clock toxics' timers of one connection.

    Args:
        loop: the proxy's event loop (its clock is the one of every time here).
        end: ends the connection: ``end("close" | "reset" | "abort")``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, end: Callable[[str], None]) -> None:
        self._loop = loop
        self._end = end
        #: When the connection was accepted, on the loop's clock.
        self.opened_at = loop.time()
        #: When the last byte was read either way (stamped only while `watching`).
        self.last_active = self.opened_at
        #: An ``idle_timeout`` is armed: the lanes stamp `last_active` per chunk read.
        self.watching = False
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._armed_at: dict[int, float] = {}
        self._clock_toxics: dict[int, Toxic] = {}

    def active(self) -> None:
        """A chunk was read (either way): the idle clock starts again."""
        self.last_active = self._loop.time()

    def sync(self, toxics: Iterable[Toxic], roll: Callable[[Toxic], bool]) -> None:
        """Start the timers of newly enabled toxics; stop those of toxics gone.

        Args:
            toxics: the toxics armed for this connection now.
            roll: whether a toxic acts on this connection (its toxicity roll).

        A ``timeout`` or ``reset_peer`` timer runs from when the toxic first took effect,
        until it fires or the toxic is removed. A clock toxic's timer is re-armed on every
        change, so an updated ``timeout`` or ``lifetime`` counts at once, and stops when
        the toxic is removed or its roll turns disabled.
        """
        now = self._loop.time()
        keys: set[int] = set()
        clock: dict[int, Toxic] = {}
        for toxic in toxics:
            key = toxic.key
            if toxic.kind in CLOCK_KINDS:
                if roll(toxic):
                    keys.add(key)
                    clock[key] = toxic
                    self._armed_at.setdefault(key, now)
            elif toxic.kind in _HOW:
                keys.add(key)
                enabled = roll(toxic)  # rolled even while its timer runs: records a change
                if key in self._timers or not enabled:
                    continue
                if toxic.kind == "reset_peer" or toxic["timeout"] > 0:
                    self._timers[key] = self._loop.call_later(
                        toxic["timeout"] / 1000, self._fired, key, _HOW[toxic.kind]
                    )
            else:
                roll(toxic)
        for key in set(self._timers) - keys:
            self._timers.pop(key).cancel()
        for key in set(self._armed_at) - set(clock):
            del self._armed_at[key]
        self._clock_toxics = clock
        self.watching = any(t.kind == "idle_timeout" for t in clock.values())
        for key in clock:
            self._arm_clock(key)

    def _deadline(self, toxic: Toxic) -> float:
        return drop_deadline(
            toxic,
            opened_at=self.opened_at,
            armed_at=self._armed_at[toxic.key],
            last_active=self.last_active,
        )

    def _arm_clock(self, key: int) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        toxic = self._clock_toxics[key]
        self._timers[key] = self._loop.call_at(self._deadline(toxic), self._clock_fired, key)

    def _clock_fired(self, key: int) -> None:
        self._timers.pop(key, None)
        toxic = self._clock_toxics.get(key)
        if toxic is None:
            return
        if self._deadline(toxic) > self._loop.time():
            self._arm_clock(key)  # traffic since the timer was armed moved the deadline
            return
        self._end("abort")

    def _fired(self, key: int, how: str) -> None:
        self._timers.pop(key, None)
        self._end(how)

    def cancel(self) -> None:
        """Stop every timer (the connection is closing)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._clock_toxics = {}
        self.watching = False
