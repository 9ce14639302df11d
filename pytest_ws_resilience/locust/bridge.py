"""`LoopThread`: one asyncio event loop in a real OS thread of a Locust (gevent) process.

Locust runs each user in a greenlet on gevent's hub; this package's client, and the
scenario player, are asyncio. Of the ways to join the two (measured by
``benchmarks/locust_bridge.py``, see docs/distributed-load.md) this is the one that
keeps one client and one player for both runners: a Locust worker process starts ONE
asyncio loop in a native thread (``gevent.monkey.get_original``: gevent patches
``threading``, a patched thread would be a greenlet), and each user greenlet hands its
coroutine to that loop and sleeps on a gevent `AsyncResult` until the loop answers.

Crossing threads safely, both ways:

- greenlet -> loop: ``loop.call_soon_threadsafe`` (asyncio's own thread-safe door);
- loop -> greenlet: ``hub.loop.run_callback_threadsafe`` (gevent's): the result is set,
  and Locust's events fired, in the hub's thread, never in the loop's.

The loop gets the original epoll selector: after Locust's ``patch_all`` the
``selectors`` module hands out gevent's selector, which would run a second gevent hub
inside the loop's thread.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import gevent  # type: ignore[import-untyped]
import gevent.event  # type: ignore[import-untyped]
from gevent import monkey

__all__ = ["LoopThread"]

T = TypeVar("T")


def _original_selector() -> selectors.BaseSelector:
    """The platform's own selector, as before gevent patched ``selectors``."""
    for name in ("EpollSelector", "KqueueSelector", "PollSelector", "SelectSelector"):
        try:
            selector_class = monkey.get_original("selectors", name)
        except AttributeError:
            continue
        try:
            selector: selectors.BaseSelector = selector_class()
        except (OSError, AttributeError):
            continue
        return selector
    return selectors.DefaultSelector()  # pragma: no cover - every platform has one above


class LoopThread:
    """An asyncio loop running in a native thread; greenlets run coroutines on it.

    Start it once per process (`start`), from the gevent hub's thread; `run` blocks the
    calling greenlet only (other users keep running); `post` hands a call back to the
    hub's thread; `stop` ends the loop, bounded.
    """

    def __init__(self) -> None:
        self._hub = gevent.get_hub()
        self._loop = asyncio.SelectorEventLoop(_original_selector())
        self._started = False
        self._stopped = False

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("running" if self._started else "new")
        return f"LoopThread({state})"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def start(self) -> LoopThread:
        """Run the loop in a new native thread; returns at once."""
        if not self._started:
            start_new_thread = monkey.get_original("_thread", "start_new_thread")
            start_new_thread(self._serve, ())
            self._started = True
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.wait(pending, timeout=2.0))
            self._loop.close()

    def post(self, call: Callable[..., Any], *args: Any) -> None:
        """Call ``call(*args)`` in the gevent hub's thread (from the loop's thread)."""
        self._hub.loop.run_callback_threadsafe(call, *args)

    def run(self, make: Callable[[], Coroutine[Any, Any, T]], *, timeout: float) -> T:
        """Run ``make()`` on the loop; block the calling greenlet until it ends.

        Raises:
            TimeoutError: not done within ``timeout`` seconds (the coroutine is
                cancelled).
            Whatever the coroutine raised.
        """
        if not self._started or self._stopped:
            raise RuntimeError(f"{self!r}: start() it before running coroutines on it")
        answer: gevent.event.AsyncResult = gevent.event.AsyncResult()
        handle: list[asyncio.Task[T]] = []

        def deliver(task: asyncio.Task[T]) -> None:  # in the loop's thread
            if task.cancelled():
                self.post(answer.set_exception, TimeoutError(f"cancelled after {timeout:g}s"))
            elif task.exception() is not None:
                self.post(answer.set_exception, task.exception())
            else:
                self.post(answer.set, task.result())

        def begin() -> None:  # in the loop's thread
            task = self._loop.create_task(make())
            task.add_done_callback(deliver)
            handle.append(task)

        self._loop.call_soon_threadsafe(begin)
        try:
            result: T = answer.get(timeout=timeout)
        except gevent.Timeout:
            if handle:
                self._loop.call_soon_threadsafe(handle[0].cancel)
            raise TimeoutError(f"no outcome within {timeout:g}s") from None
        return result

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop (its tasks are cancelled); waits at most ``timeout`` seconds."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        with gevent.Timeout(timeout, False):
            while not self._loop.is_closed():
                gevent.sleep(0.01)
