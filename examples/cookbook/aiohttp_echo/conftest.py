"""The server is a command (``--ws-server-cmd='python server.py --port {port}'``).

The plugin runs it in this directory (where pyproject.toml is) with the Python running
pytest first on its ``PATH``, so ``python`` is the one beside this pytest and has aiohttp.
"""

import pytest

__all__: list[str] = []


@pytest.fixture(autouse=True)
def _needs_the_server(ws_server):
    """Stop the run rather than test the embedded reference server in place of server.py."""
    if ws_server.is_embedded:
        pytest.exit(
            "ws_server is the embedded reference server, not server.py: pass "
            "--ws-server-cmd='python server.py --port {port}'",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
