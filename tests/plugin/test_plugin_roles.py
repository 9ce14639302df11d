"""One plugin object per process role, as users run pytest: serial, ``-n 0`` and ``-n 2``.

An inner conftest lists, in every process of the run (the controller included), the
plugins registered under a ``ws_resilience`` name and which of them implement each hook,
and the outer test checks that each process has the entry point, the two fixture
modules and exactly one role object, which alone implements the hooks every process
runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.websocket_integration

#: Hooks the role object implements, once per process.
EVERY_PROCESS_HOOKS = (
    "pytest_sessionstart",
    "pytest_report_header",
    "pytest_collection_modifyitems",
    "pytest_runtest_setup",
    "pytest_runtest_call",
    "pytest_runtest_teardown",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
    "pytest_pycollect_makeitem",
)

LIST_PLUGINS = """
import json
import os
from pathlib import Path

import pytest

OUT = Path({out!r})
HOOKS = {hooks!r}


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    config = session.config
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        process = workerinput["workerid"]
    else:
        process = "controller" if getattr(config.option, "dist", "no") != "no" else "main"
    plugins = {{
        name: type(plugin).__name__
        for name, plugin in config.pluginmanager.list_name_plugin()
        if name.startswith("ws_resilience")
    }}
    hooks = {{
        hook: sorted(
            impl.plugin_name
            for impl in getattr(config.pluginmanager.hook, hook).get_hookimpls()
            if impl.plugin_name.startswith("ws_resilience")
        )
        for hook in HOOKS
    }}
    (OUT / (process + ".json")).write_text(json.dumps({{"plugins": plugins, "hooks": hooks}}))
"""

TESTS = """
import pytest

@pytest.mark.asyncio
async def test_connects(ws_client):
    assert ws_client.connected

def test_plain():
    pass
"""


def _run(pytester: pytest.Pytester, out: Path, *args: str) -> dict[str, dict[str, object]]:
    out.mkdir()
    pytester.makeconftest(LIST_PLUGINS.format(out=str(out), hooks=EVERY_PROCESS_HOOKS))
    pytester.makepyfile(test_roles=TESTS)
    result = pytester.runpytest_subprocess("-p", "ws_resilience", *args)
    result.assert_outcomes(passed=2)
    return {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}


def _expected(role_name: str, role_class: str) -> dict[str, object]:
    return {
        "plugins": {
            "ws_resilience": "module",
            "ws_resilience.fixtures": "module",
            "ws_resilience.loop_fixtures": "module",
            role_name: role_class,
        },
        "hooks": {hook: [role_name] for hook in EVERY_PROCESS_HOOKS},
    }


def test_a_serial_run_registers_one_session_object(
    ws_pytester: pytest.Pytester, tmp_path: Path
) -> None:
    seen = _run(ws_pytester, tmp_path / "out", "-p", "no:xdist")
    assert seen == {"main": _expected("ws_resilience.session", "WsSession")}


def test_n0_is_a_serial_run(ws_pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    seen = _run(ws_pytester, tmp_path / "out", "-n", "0")
    assert seen == {"main": _expected("ws_resilience.session", "WsSession")}


def test_an_xdist_run_registers_one_object_per_process_role(
    ws_pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytest.importorskip("xdist")
    seen = _run(ws_pytester, tmp_path / "out", "-n", "2", "--dist", "loadgroup")
    assert seen == {
        "controller": _expected("ws_resilience.controller", "WsController"),
        "gw0": _expected("ws_resilience.worker", "WsWorker"),
        "gw1": _expected("ws_resilience.worker", "WsWorker"),
    }


def test_the_entry_point_implements_only_options_and_configure(
    ws_pytester: pytest.Pytester,
) -> None:
    ws_pytester.makeconftest(
        """
        def pytest_sessionstart(session):
            entry = session.config.pluginmanager.get_plugin("ws_resilience")
            hooks = sorted(name for name in vars(entry) if name.startswith("pytest_"))
            assert hooks == ["pytest_addoption", "pytest_configure"], hooks
        """
    )
    ws_pytester.makepyfile("def test_nothing():\n    pass\n")
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=1)
