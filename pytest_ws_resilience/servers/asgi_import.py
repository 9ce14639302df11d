"""Importing the user's ASGI app for ``--ws-app``: is uvicorn there, does the path name
something, and the import itself.

Two kinds of failure, told apart on purpose: a mistake in the configuration (no such
module or attribute, uvicorn missing) is found before any test runs and reported as one
line (`AsgiAppImportError`, `AsgiExtraMissingError`); an exception raised by the app's
own code is a startup failure, reported once with its traceback (`AsgiAppStartupError`)
when the server starts.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.errors import (
    AsgiAppImportError,
    AsgiAppStartupError,
    AsgiExtraMissingError,
)

__all__ = [
    "ASGI_EXTRA_HINT",
    "LIFESPAN_OFF_HINT",
    "app_environment",
    "check_app_importable",
    "lifespan_hint",
    "load_app",
    "not_an_asgi_app",
    "require_uvicorn",
]

#: How to install what ``--ws-app`` needs; part of the missing-extra error.
ASGI_EXTRA_HINT = "pip install 'pytest-ws-resilience[asgi]'"
#: Added to a startup failure that looks like an app without lifespan support.
LIFESPAN_OFF_HINT = (
    "hint: the app looks like it does not support the ASGI lifespan (Django Channels' "
    "ProtocolTypeRouter does not): run it with --ws-app-lifespan=off "
    '(or app_lifespan = "off" in [tool.ws_resilience])'
)
#: What a failure says when the app raised on the lifespan scope itself.
LIFESPAN_UNSUPPORTED_MARK = "the app raised on the 'lifespan' scope before reading it"
_LIFESPAN_SIGNS = (
    "scope type 'lifespan'",  # Channels' ProtocolTypeRouter
    "Exception in 'lifespan' protocol",  # uvicorn, lifespan="on"
    LIFESPAN_UNSUPPORTED_MARK,  # the thread runner's lifespan watch
)


def lifespan_hint(text: str, lifespan: str) -> str:
    """`LIFESPAN_OFF_HINT` when a startup failure's text (message and log) looks like an
    app that does not support the lifespan, and the lifespan was not already off; else
    ""."""
    if lifespan == "off" or not any(sign in text for sign in _LIFESPAN_SIGNS):
        return ""
    return LIFESPAN_OFF_HINT


@contextmanager
def app_environment(env: Sequence[tuple[str, str]]) -> Iterator[None]:
    """``os.environ`` with ``env`` set (``app_env``, e.g. ``DJANGO_SETTINGS_MODULE``)
    inside the block, and restored after it."""
    saved = {name: os.environ.get(name) for name, _ in env}
    os.environ.update(dict(env))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def require_uvicorn(subject: str = "--ws-app") -> None:
    """Fail with the install hint when uvicorn (the ``asgi`` extra) cannot be imported.

    Raises:
        AsgiExtraMissingError: one line naming the extra.
    """
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise AsgiExtraMissingError(f"{subject} needs uvicorn: {ASGI_EXTRA_HINT}") from None


def _is_missing(err: ModuleNotFoundError, module: str) -> bool:
    """True when the error is about ``module`` itself (or a parent package), not about
    something the app imports."""
    parts = module.split(".")
    return err.name in {".".join(parts[: i + 1]) for i in range(len(parts))}


def check_app_importable(
    app: AppPath, *, subject: str, execute: bool = True, env: Sequence[tuple[str, str]] = ()
) -> None:
    """Check a configuration mistake early: the module or the attribute does not exist.

    With ``execute`` the module is imported (the attribute is checked too); without it
    only located (for a subprocess app, so its code does not run in this process).
    An exception raised by the app's own code is left for startup, which reports it
    with its traceback (`load_app`): it is not a mistake in the path. ``env`` (the
    ``app_env`` setting) is set during the import, as it is when the app is served.

    Raises:
        AsgiAppImportError: one line, e.g. ``--ws-app=nope.mod:app: cannot import
            module 'nope.mod' (ModuleNotFoundError: No module named 'nope')``.
    """
    try:
        if execute:
            with app_environment(env):
                module = importlib.import_module(app.module)
        else:
            if importlib.util.find_spec(app.module) is None:
                raise ModuleNotFoundError(f"No module named {app.module!r}", name=app.module)
            return
    except ModuleNotFoundError as err:
        if _is_missing(err, app.module):
            raise AsgiAppImportError(
                f"{subject}: cannot import module {app.module!r} ({type(err).__name__}: {err})"
            ) from None
        return
    except Exception:
        return  # the app's own bug: reported with its traceback when the server starts
    try:
        target = _resolve_attr(module, app.attr)
    except AttributeError:
        raise AsgiAppImportError(
            f"{subject}: module {app.module!r} has no attribute {app.attr!r}"
        ) from None
    problem = not_an_asgi_app(target, factory=app.factory)
    if problem:
        raise AsgiAppImportError(f"{subject}: {app.module}.{app.attr} {problem}")


def not_an_asgi_app(target: Any, *, factory: bool = False) -> str:
    """Why ``target`` cannot be served as an ASGI 3 app (uvicorn is run with
    ``interface="asgi3"``), or "" when it may be.

    An app is called as ``app(scope, receive, send)``; a factory (``module:factory()``)
    is called with no argument. What the signature cannot tell (a builtin, a C
    extension) is taken on trust: the server start reports it.
    """
    if not callable(target):
        return f"is a {type(target).__name__}, not an ASGI app (a callable)"
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return ""
    arguments: tuple[None, ...] = () if factory else (None, None, None)
    try:
        signature.bind(*arguments)
    except TypeError:
        taken = str(signature)
        taken = taken if len(taken) <= 60 else taken[:57] + "..."
        if factory:
            return f"takes {taken}: not an app factory (called with no argument)"
        return f"takes {taken}: not an ASGI app (called as app(scope, receive, send))"
    return ""


def _resolve_attr(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def load_app(app: AppPath) -> Any:
    """Import the app (calling the factory for ``module:factory()``).

    Raises:
        AsgiAppStartupError: anything the import or the factory raised, with its
            traceback.
    """
    try:
        target = _resolve_attr(importlib.import_module(app.module), app.attr)
        return target() if app.factory else target
    except Exception:
        raise AsgiAppStartupError(
            f"ASGI app {app} failed to load:\n{traceback.format_exc()}"
        ) from None
