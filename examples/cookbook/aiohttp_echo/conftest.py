"""What this project's run needs besides pyproject.toml: a ``python`` that has aiohttp.

The server is a command (``--ws-server-cmd='python server.py --port {port}'``), found
through ``PATH``: the directory of the Python running pytest goes first on the ``PATH``
the command inherits, so ``python`` is the one installed beside this pytest (a
virtualenv's, even when it is not activated, as under ``make demo``).
"""

import os
import sys
from pathlib import Path

import pytest

__all__: list[str] = []

os.environ["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), os.environ["PATH"]))


@pytest.fixture(autouse=True)
def _needs_the_server(ws_server):
    """Stop the run rather than test the embedded reference server in place of server.py."""
    if ws_server.is_embedded:
        pytest.exit(
            "ws_server is the embedded reference server, not server.py: pass "
            "--ws-server-cmd='python server.py --port {port}'",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
