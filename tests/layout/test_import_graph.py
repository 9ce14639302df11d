"""The package's shape holds: no import cycle, pure modules stay pure, the root is cheap.

The import graph is read from the source (every ``import`` outside ``TYPE_CHECKING``
blocks, function-level ones included: a lazy import that hides a cycle is still a
cycle in the design). Purity is checked by importing each pure module in a fresh
interpreter and listing what it pulled in.
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_ws_resilience

PACKAGE_DIR = Path(pytest_ws_resilience.__file__).parent
PACKAGE = "pytest_ws_resilience"

#: Modules with no I/O: policy that is unit-tested without sockets, loops or pytest.
PURE_MODULES = (
    "errors",
    "redaction",
    "stats",
    "vacuous",
    "peer_json",
    "lazy",
    "config.app_path",
    "config.backoff",
    "config.heartbeat",
    "config.bounds",
    "config.loading",
    "config.profiles",
    "config.routes",
    "config.services",
    "config.settings",
    "config.timeouts",
    "config.validation",
    "client.auth_methods",
    "client.bounds",
    "client.close_cause",
    "client.close_codes",
    "client.eventlog",
    "client.fallback",
    "client.greeting",
    "client.logs",
    "client.matching",
    "client.metrics",
    "client.observers",
    "client.jitter",
    "client.entitlements",
    "pool.keys",
    "pool.stats",
    "contracts.contract",
    "contracts.keys",
    "contracts.checker",
    "contracts.rules",
    "contracts.result",
    "isolation.index",
    "isolation.markers",
    "isolation.frames",
    "isolation.violation",
    "isolation.detector",
    "isolation.guard",
    "isolation.nothing_checked",
    "isolation.options",
    "isolation.rules",
    "isolation.fields",
    "isolation.differential",
    "isolation.races",
    "isolation.scopes",
    "isolation.streams",
    "isolation.resume",
    "chaos.toxics",
    "chaos.timing",
    "chaos.seeds",
    "chaos.presets",
    "chaos.message_faults",
    "chaos.frame_reader",
    "chaos.frame_faults",
    "chaos.forwarding",
    "chaos.message_filter",
    "chaos.upstream",
    "fuzz.frames",
    "fuzz.profiles",
    "fuzz.properties",
    "fuzz.result",
    "fuzz.mutations",
    "fuzz.strategies",
    "fuzz.schema_compat",
    "servers.readiness",
    "servers.log_digest",
    "servers.growth",
    "load.thresholds",
    "load.error_kinds",
    "load.fd_limit",
    "load.collector",
    "locust.spec",
    "load.scenario",
    "load.routing",
    "report.records",
    "report.aggregate",
    "report.summary",
    "report.svg",
    "report.html",
    "report.document",
    "report.server_info",
    "plugin.markers",
    "plugin.options",
    "plugin.roles",
    "plugin.xdist_groups",
    "plugin.service_rules",
    "testing.vocabulary",
    "testing.rooms",
    "testing.agent",
    "testing.history",
    "testing.faults",
)
#: What a pure module must never load, even through a dependency.
IO_MODULES = (
    "asyncio",
    "socket",
    "ssl",
    "subprocess",
    "pytest",
    "_pytest",
    "docker",
    "uvicorn",
    "websockets",
)
#: Pure modules that use websockets' sans-I/O code or its exception types: websockets'
#: package import loads ``socket`` (through ``email.utils``), never a connection.
SANS_IO_ON_WEBSOCKETS: frozenset[str] = frozenset(
    {"chaos.frame_reader", "chaos.frame_faults", "chaos.message_filter", "load.error_kinds"}
)

#: Pure modules that build Hypothesis strategies: what Hypothesis' own import loads
#: (``socket`` and ``subprocess`` for its database and CLI; ``asyncio`` and ``ssl`` too
#: before 6.170.12) is measured first and not held against them.
ON_HYPOTHESIS: frozenset[str] = frozenset(
    {"fuzz.mutations", "fuzz.strategies", "fuzz.schema_compat"}
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _all_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The package modules ``tree`` imports, outside ``if TYPE_CHECKING:`` blocks."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE) and alias.name in modules:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith(PACKAGE):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    found.add(sub if sub in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _all_modules()
    return {
        name: {m for m in _imports(ast.parse(path.read_text()), modules) if m != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (its first module repeated at its end), or [] if there is none.

    The stdlib's topological sorter finds it, without recursion: a recursive search
    here once raised the interpreter's recursion limit for the rest of the worker's
    tests, and that changed how deep JSON decodes in every test after it.
    """
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return []


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycle(_graph()) == []


def test_subpackages_form_no_cycle_either() -> None:
    """Folder to folder (client -> config, never back), as the architecture page draws."""
    folders: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        here = module.split(".")[1] if module.count(".") else module
        links = folders.setdefault(here, set())
        for target in targets:
            there = target.split(".")[1] if target.count(".") else target
            if there != here:
                links.add(there)
    # The root's lazy table names every layer: it is the top, not a folder in the graph.
    folders.pop(PACKAGE, None)
    for links in folders.values():
        links.discard(PACKAGE)
    assert _cycle(folders) == []


def test_the_pure_module_list_names_real_modules() -> None:
    modules = _all_modules()
    assert [m for m in PURE_MODULES if f"{PACKAGE}.{m}" not in modules] == []


@pytest.mark.parametrize("module", PURE_MODULES)
def test_a_pure_module_loads_no_io(module: str) -> None:
    base = "import hypothesis\n" if module in ON_HYPOTHESIS else ""
    code = (
        "import json, sys\n"
        f"{base}"
        f"before = {{n for n in {IO_MODULES!r} if n in sys.modules}}\n"
        f"import {PACKAGE}.{module}\n"
        f"print(json.dumps(sorted(n for n in {IO_MODULES!r} if n in sys.modules)))\n"
        "print(json.dumps(sorted(before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    loaded, before = set(json.loads(out[0])), set(json.loads(out[1]))
    if module in SANS_IO_ON_WEBSOCKETS:
        loaded -= {"websockets", "socket"}
    loaded -= before  # what the library a module builds on loads on its own
    assert sorted(loaded) == [], f"{module} loads {sorted(loaded)}"


def test_importing_the_package_loads_no_pytest_and_no_server() -> None:
    code = (
        "import json, sys\n"
        f"import {PACKAGE}\n"
        "print(json.dumps([len([m for m in sys.modules if m.startswith('pytest_ws')]),"
        f" sorted(n for n in {IO_MODULES!r} if n in sys.modules)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    own, loaded = json.loads(out)
    assert loaded == []
    assert own <= 2  # the package and its lazy-import helper


def test_no_module_is_over_600_lines() -> None:
    long = {
        name: n
        for name, path in _all_modules().items()
        if (n := len(path.read_text().splitlines())) > 600
    }
    assert long == {}
