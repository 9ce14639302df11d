"""Refuse to test the embedded reference server in place of rooms.py."""

import pytest

__all__: list[str] = []


@pytest.fixture(autouse=True)
def _needs_the_app(ws_server):
    """Stop the run when this directory's pyproject.toml (``app = ...``) was not read."""
    if ws_server.is_embedded:
        pytest.exit(
            "ws_server is the embedded reference server, not rooms.py: run from "
            "examples/cookbook/starlette_app/ or pass -c .../starlette_app/pyproject.toml",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
