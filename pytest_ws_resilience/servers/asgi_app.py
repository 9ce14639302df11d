"""Serve the user's own ASGI app (FastAPI, Starlette, ...) with uvicorn, for ``--ws-app``:
the runner the configuration asks for, behind one interface.

- `asgi_thread.AsgiAppServer`: uvicorn in a background thread with its own event loop
  (the default: the app's in-memory state lives in the test process);
- `asgi_process.AsgiAppProcess`: ``python -m uvicorn`` in a subprocess
  (``--ws-app-subprocess``).

Importing the app is `asgi_import`; both runners count the app as up by the one
readiness rule (`readiness`). uvicorn is the optional extra ``asgi`` and is imported
only when an app is served.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Protocol, Self

from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.config.settings import ConnectionOptions
from pytest_ws_resilience.servers.asgi_import import require_uvicorn
from pytest_ws_resilience.servers.asgi_process import AsgiAppProcess
from pytest_ws_resilience.servers.asgi_thread import AsgiAppServer

__all__ = ["AppServer", "open_app_server"]


class AppServer(Protocol):
    """What `ServerUnderTest` needs of a served app, whichever way it runs."""

    @property
    def url(self) -> str: ...

    @property
    def app_path(self) -> AppPath: ...

    def start(self, timeout: float = 10.0) -> Self: ...

    def stop(self, timeout: float = 5.0) -> None: ...


def open_app_server(
    app_path: AppPath,
    *,
    path: str = "/",
    in_subprocess: bool = False,
    app_dirs: Sequence[str] = (),
    timeout: float = 10.0,
    lifespan: str = "auto",
    env: Sequence[tuple[str, str]] = (),
    connection: ConnectionOptions | None = None,
    unauthenticated: bool = False,
) -> AsgiAppServer | AsgiAppProcess:
    """Start ``app_path`` the configured way and return it once it is up.

    ``lifespan`` is uvicorn's ("auto": used when the app supports it); ``env`` is set
    for the app (in this process while it runs, or in the subprocess's environment);
    ``connection`` and ``unauthenticated`` shape the readiness probes.

    Raises:
        AsgiExtraMissingError: uvicorn is not installed.
        AsgiAppStartupError: the app failed to start (with its traceback).
        WsTimeoutError: it was not up within ``timeout`` seconds.
    """
    require_uvicorn()
    for directory in reversed(app_dirs):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    server: AsgiAppServer | AsgiAppProcess
    if in_subprocess:
        server = AsgiAppProcess(
            app_path,
            path=path,
            app_dirs=app_dirs,
            lifespan=lifespan,
            app_env=env,
            connection=connection,
            unauthenticated=unauthenticated,
        )
    else:
        server = AsgiAppServer(
            app_path,
            path=path,
            lifespan=lifespan,
            env=env,
            connection=connection,
            unauthenticated=unauthenticated,
        )
    return server.start(timeout=timeout)
