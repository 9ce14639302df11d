"""Nothing to set up: ``--ws-app`` imports ``mysite.asgi`` from this directory, and a
``--ws-server-cmd`` (daphne) runs in it, with the Python running pytest first on its
``PATH`` (so ``daphne`` is the one installed beside this pytest)."""

import pytest

__all__: list[str] = []


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
