"""The example's own run: one secret shared by the app and the plugin's `ws_tokens`."""

import os
import secrets
from pathlib import Path

import pytest

__all__: list[str] = []

HERE = Path(__file__).parent

# The app reads its HS256 secret from CHAT_JWT_SECRET, and pyproject.toml names the same
# variable (jwt_secret_env) for the tokens the plugin mints. A conftest is imported before
# the plugin reads its configuration and before the app starts, so a fresh random value
# set here when the variable is unset (or empty) reaches both, and a subprocess-served app
# through the environment. It is never printed: the plugin redacts what it reads through
# jwt_secret_env.
if not os.environ.get("CHAT_JWT_SECRET"):
    os.environ["CHAT_JWT_SECRET"] = secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def _needs_the_chat_app(request, ws_server):
    """Refuse to test the embedded reference server in place of app.py.

    Its protocol looks alike, so most tests would pass against it and prove nothing.
    From the repository root (``pytest examples``) this directory's pyproject.toml is not
    read: skip. From here, the app must be what ``ws_server`` serves: stop the run.
    """
    if not ws_server.is_embedded:
        return
    if request.config.rootpath != HERE:
        pytest.skip("tests app.py: run from examples/fastapi_app/, whose pyproject.toml serves it")
    pytest.exit(
        "ws_server is the embedded reference server, not app.py: this pytest-ws-resilience "
        "does not serve `app = ...` (needs --ws-app support and the 'asgi' extra)",
        returncode=pytest.ExitCode.USAGE_ERROR,
    )
