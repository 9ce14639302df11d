"""Importing the user's app: a wrong path is a one-line configuration error, found early;
the app's own exception is a startup error with its traceback, found when it starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_ws_resilience.config.app_path import AppPath
from pytest_ws_resilience.errors import AsgiAppImportError, AsgiAppStartupError
from pytest_ws_resilience.servers.asgi_import import (
    check_app_importable,
    load_app,
    require_uvicorn,
)


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "goodapp_imp.py").write_text(
        "async def the_app(scope, receive, send):\n    pass\n\n"
        "class Holder:\n    app = staticmethod(the_app)\n\n"
        "def create_app():\n    return 'made'\n"
    )
    (tmp_path / "needsdep_imp.py").write_text("import a_dependency_that_is_missing\n")
    (tmp_path / "badfactory_imp.py").write_text("def create_app():\n    raise KeyError('debug')\n")
    return tmp_path


def test_uvicorn_is_there() -> None:
    require_uvicorn()


def test_a_module_that_does_not_exist_is_a_one_line_error(modules: Path) -> None:
    for execute in (True, False):
        with pytest.raises(AsgiAppImportError) as info:
            check_app_importable(AppPath("nope.mod", "app"), subject="--ws-app=x", execute=execute)
        assert str(info.value) == (
            "--ws-app=x: cannot import module 'nope.mod' "
            "(ModuleNotFoundError: No module named 'nope')"
        )


def test_a_missing_attribute_is_a_one_line_error(modules: Path) -> None:
    check_app_importable(AppPath("goodapp_imp", "Holder.app"), subject="s")
    with pytest.raises(AsgiAppImportError, match="module 'goodapp_imp' has no attribute 'apq'"):
        check_app_importable(AppPath("goodapp_imp", "apq"), subject="s")


def test_the_apps_own_import_error_is_left_for_startup(modules: Path) -> None:
    check_app_importable(AppPath("needsdep_imp", "app"), subject="s")
    with pytest.raises(AsgiAppStartupError) as info:
        load_app(AppPath("needsdep_imp", "app"))
    assert "a_dependency_that_is_missing" in str(info.value)


def test_a_factory_is_called_and_its_exception_comes_with_the_traceback(modules: Path) -> None:
    assert load_app(AppPath("goodapp_imp", "create_app", factory=True)) == "made"
    with pytest.raises(AsgiAppStartupError) as info:
        load_app(AppPath("badfactory_imp", "create_app", factory=True))
    message = str(info.value)
    assert message.startswith("ASGI app badfactory_imp:create_app() failed to load:")
    assert "raise KeyError('debug')" in message
