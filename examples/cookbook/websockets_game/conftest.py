"""Where the game server is: a URL you give (``--ws-url``), else the ``game`` service.

The service (pyproject.toml) runs ``python -m game_server`` in this directory, where
pyproject.toml is, with the Python running pytest first on its ``PATH``.
"""

import pytest

__all__: list[str] = []


@pytest.fixture
def game_url(request):
    """``--ws-url`` when given (a running server), else the run's ``game`` service."""
    if request.config.getoption("ws_url"):
        return request.getfixturevalue("ws_server").url
    return request.getfixturevalue("ws_services")["game"].url
