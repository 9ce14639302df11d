"""What ``--ws-app`` / the config key ``app`` names: an ASGI app's import path.

Pure: parsing only. Importing and serving the app is `pytest_ws_resilience.servers`'
job; the loader checks the path's form here, before any test runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AppPath", "parse_app_path"]

_IDENTIFIER_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class AppPath:
    """A parsed ``module:attr`` (``factory=True`` for ``module:factory()``)."""

    module: str
    attr: str
    factory: bool = False

    def __str__(self) -> str:
        return f"{self.module}:{self.attr}{'()' if self.factory else ''}"

    @property
    def uvicorn_target(self) -> str:
        """The ``module:attr`` uvicorn's command line takes (``--factory`` says the rest)."""
        return f"{self.module}:{self.attr}"


def parse_app_path(text: str) -> AppPath:
    """Parse ``"pkg.mod:attr"`` or ``"pkg.mod:factory()"`` (the factory is called once).

    The attribute may be dotted (``"pkg.mod:holder.app"``).

    Raises:
        ValueError: not of that form; the message says what is expected.
    """
    module, sep, attr = text.strip().partition(":")
    factory = attr.endswith("()")
    if factory:
        attr = attr[:-2]
    if (
        not sep
        or not _IDENTIFIER_PATH_RE.fullmatch(module)
        or not _IDENTIFIER_PATH_RE.fullmatch(attr)
    ):
        raise ValueError(
            f"{text!r} is not an app import path: expected 'module:attr' or "
            f"'module:factory()' (e.g. 'myapp.main:app')"
        )
    return AppPath(module, attr, factory)
