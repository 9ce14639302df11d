"""Where the game server is: a URL you give (``--ws-url``), else the ``game`` service.

The service (pyproject.toml) runs ``python -m game_server``: this directory goes on the
``PYTHONPATH`` it inherits, and the directory of the Python running pytest first on its
``PATH``, so it runs from any working directory with the Python beside this pytest.
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


@pytest.fixture
def game_url(request):
    """``--ws-url`` when given (a running server), else the run's ``game`` service."""
    if request.config.getoption("ws_url"):
        return request.getfixturevalue("ws_server").url
    return request.getfixturevalue("ws_services")["game"].url
