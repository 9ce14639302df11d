"""The app a ``--ws-app-subprocess`` uvicorn serves: the user's app behind
`asgi_lifespan.LifespanWatch`, so "auto" tells an app without lifespan support from a
failed startup in the subprocess as it does in the thread.

uvicorn runs ``pytest_ws_resilience.servers.asgi_wrap:app --factory``; the factory reads
the user's app path and the lifespan mode from the environment the runner sets
(`APP_ENV`, `LIFESPAN_ENV`). Errors of the import are the app's startup errors, printed
with their traceback to the subprocess's output.
"""

from __future__ import annotations

import os
from typing import Any

from pytest_ws_resilience.config.app_path import parse_app_path
from pytest_ws_resilience.servers.asgi_import import load_app
from pytest_ws_resilience.servers.asgi_lifespan import LifespanWatch

__all__ = ["APP_ENV", "LIFESPAN_ENV", "app"]

#: The user's app path (``module:attr`` or ``module:factory()``).
APP_ENV = "WS_RESILIENCE_ASGI_APP"
#: "auto", "on" or "off" (uvicorn's ``--lifespan`` gets the same).
LIFESPAN_ENV = "WS_RESILIENCE_ASGI_LIFESPAN"


def app() -> Any:
    """The user's app, imported and wrapped (uvicorn's ``--factory`` calls this)."""
    path = parse_app_path(os.environ[APP_ENV])
    return LifespanWatch(load_app(path), os.environ.get(LIFESPAN_ENV, "auto"))
