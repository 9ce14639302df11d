"""The app's ASGI lifespan, watched: failures kept for the error, "auto" made exact.

uvicorn only logs a lifespan failure; `LifespanWatch` keeps it, so a failed start says
why. Under ``lifespan="auto"`` uvicorn serves an app whose lifespan raised as if it had
no lifespan support, which hides a real startup failure (a database unreachable). The
watch tells the two apart: an app that raised before reading the scope's first message
does not support the lifespan (Django Channels' ``ProtocolTypeRouter`` raises "No
application configured for scope type 'lifespan'") and is served without one; an app
that read ``lifespan.startup`` and then raised does support it, and its failure is
reported as ``lifespan.startup.failed``, which stops uvicorn, as under "on".

Used by both runners: the thread runner wraps the app itself; the subprocess runner
serves `asgi_wrap`, which wraps it in the subprocess.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pytest_ws_resilience.servers.asgi_import import LIFESPAN_UNSUPPORTED_MARK

__all__ = ["LifespanWatch"]

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]


class LifespanWatch:
    """ASGI middleware keeping the app's lifespan failures (uvicorn only logs them).

    Starlette turns an exception in the lifespan into a ``lifespan.startup.failed``
    message carrying the traceback; other apps raise. Both end up in ``failures``,
    except, under ``lifespan="auto"``, an app that raised before reading the scope's
    first message: as for uvicorn, that app does not support the lifespan, and it is
    served without one.
    """

    def __init__(self, app: Any, lifespan: str = "on") -> None:
        self.app = app
        self.lifespan = lifespan
        self.failures: list[str] = []

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        used: list[str] = []
        done: set[str] = set()

        async def watched_receive() -> _Message:
            used.append("receive")
            return await receive()

        async def watched_send(message: _Message) -> None:
            used.append("send")
            if message["type"].endswith((".complete", ".failed")):
                done.add(message["type"].split(".")[1])
            if message["type"] in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
                self.failures.append(str(message.get("message") or message["type"]))
            await send(message)

        try:
            await self.app(scope, watched_receive, watched_send)
        except BaseException:
            if not used and self.lifespan == "auto":
                raise  # unsupported: uvicorn serves the app without a lifespan
            if not self.failures:  # Starlette sends the traceback, then raises again
                mark = "" if used else f"({LIFESPAN_UNSUPPORTED_MARK})\n"
                self.failures.append(mark + traceback.format_exc())
                if self.lifespan == "auto" and "startup" not in done:
                    # uvicorn's "auto" would serve on; the app supports the lifespan
                    # and its startup failed: stop as under "on".
                    await send({"type": "lifespan.startup.failed", "message": self.failures[-1]})
                    return
            raise
