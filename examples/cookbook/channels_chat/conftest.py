"""What this project's run needs besides pyproject.toml: a daphne that finds ``mysite``.

``--ws-app`` imports ``mysite.asgi`` with this directory on ``sys.path`` (pytest's
rootdir). A ``--ws-server-cmd`` runs in pytest's working directory, which may be the
repository root (``make demo``): this directory goes on the ``PYTHONPATH`` the command
inherits, and the directory of the Python running pytest goes first on its ``PATH``, so
``daphne`` (and ``python``) are the ones installed beside this pytest.
"""

import os
import sys
from pathlib import Path

import pytest

__all__: list[str] = []

HERE = Path(__file__).parent

os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p
)
os.environ["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), os.environ["PATH"]))


@pytest.fixture(autouse=True)
def _needs_the_chat(ws_server):
    """Stop the run rather than test the embedded reference server in place of the chat.

    It happens when this directory's pyproject.toml was not read (run with
    ``-c examples/cookbook/channels_chat/pyproject.toml`` from elsewhere).
    """
    if ws_server.is_embedded:
        pytest.exit(
            "ws_server is the embedded reference server, not the chat: run from "
            "examples/cookbook/channels_chat/ or pass -c .../channels_chat/pyproject.toml",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
