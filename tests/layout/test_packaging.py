"""The release's build configuration, checked without building (fast).

`.ci/wheel-check` builds the wheel and the sdist and runs the examples with the installed
wheel; that takes minutes. These tests read the same configuration setuptools reads
(``pyproject.toml`` through setuptools' own reader, ``MANIFEST.in`` through its own file
list) and catch the usual slips at once: a new subpackage the package discovery leaves
out, a data file not shipped, a second copy of the version, a changelog or license the
sdist drops, and the wheel check drifting from the Makefile's ``demo`` target.
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from setuptools.command.egg_info import FileList
from setuptools.config.pyprojecttoml import read_configuration

import pytest_ws_resilience

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pytest_ws_resilience"
PYPROJECT = ROOT / "pyproject.toml"

#: The subpackages docs/architecture.md describes; the discovery must find at least these.
SUBPACKAGES = [
    "chaos",
    "client",
    "config",
    "contracts",
    "isolation",
    "load",
    "plugin",
    "pool",
    "report",
    "servers",
    "testing",
]


def _source_dirs() -> list[Path]:
    """Every directory of the package tree that holds Python source."""
    return sorted(
        {
            path.parent
            for path in PACKAGE.rglob("*.py")
            if "__pycache__" not in path.relative_to(PACKAGE).parts
        }
    )


def _dotted(directory: Path) -> str:
    return ".".join(directory.relative_to(ROOT).parts)


@pytest.fixture(scope="module")
def setuptools_config() -> dict[str, Any]:
    """pyproject.toml as setuptools expands it: packages found, dynamic version read."""
    return read_configuration(PYPROJECT, expand=True)


@pytest.fixture(scope="module")
def raw_pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def test_every_source_directory_is_a_regular_package() -> None:
    # A directory with modules but no __init__.py is a namespace package: setuptools'
    # find (not find_namespace) skips it, and the wheel ships without it.
    missing = [_dotted(d) for d in _source_dirs() if not (d / "__init__.py").is_file()]
    assert not missing, f"directories with modules but no __init__.py: {missing}"


def test_package_discovery_covers_every_subpackage(setuptools_config: dict[str, Any]) -> None:
    found = set(setuptools_config["tool"]["setuptools"]["packages"])
    on_disk = {_dotted(d) for d in _source_dirs()}
    assert on_disk - found == set(), f"packages left out of the wheel: {sorted(on_disk - found)}"
    assert found - on_disk == set(), f"packages found but not in the tree: {found - on_disk}"
    named = {f"pytest_ws_resilience.{name}" for name in SUBPACKAGES}
    assert named <= found, f"subpackages left out: {sorted(named - found)}"


def test_every_data_file_in_the_package_is_shipped(setuptools_config: dict[str, Any]) -> None:
    patterns = setuptools_config["tool"]["setuptools"].get("package-data", {})
    data_files = [
        path
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc"}
        and "__pycache__" not in path.relative_to(PACKAGE).parts
    ]
    assert PACKAGE / "py.typed" in data_files, "py.typed is missing: the API is typed (PEP 561)"
    unshipped = []
    for path in data_files:
        package = _dotted(path.parent)
        globs = patterns.get(package, []) + patterns.get("*", [])
        if not any(path.match(pattern) for pattern in globs):
            unshipped.append(str(path.relative_to(ROOT)))
    assert not unshipped, f"data files no [tool.setuptools.package-data] pattern ships: {unshipped}"


def test_the_version_is_defined_once(
    raw_pyproject: dict[str, Any], setuptools_config: dict[str, Any]
) -> None:
    project = raw_pyproject["project"]
    assert "version" not in project, "pyproject.toml has a static version: keep __version__ only"
    assert "version" in project.get("dynamic", []), "pyproject.toml: version is not dynamic"
    dynamic = raw_pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "pytest_ws_resilience.__version__"}
    # setuptools resolves the attribute to the package's string.
    assert setuptools_config["project"]["version"] == pytest_ws_resilience.__version__

    assignments = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__version__" for t in targets):
                assignments.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert assignments == ["pytest_ws_resilience/__init__.py:" + _version_line()], assignments
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", pytest_ws_resilience.__version__)


def _version_line() -> str:
    for number, line in enumerate((PACKAGE / "__init__.py").read_text().splitlines(), 1):
        if line.startswith("__version__ ="):
            return str(number)
    raise AssertionError("pytest_ws_resilience/__init__.py defines no __version__")


def test_the_changelog_has_a_section_for_the_next_release() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    version = re.escape(pytest_ws_resilience.__version__)
    assert re.search(rf"^## \[(Unreleased|{version})\]", changelog, re.M), (
        f"CHANGELOG.md has no '## [Unreleased]' or '## [{pytest_ws_resilience.__version__}]'"
    )


def test_the_sdist_ships_readme_changelog_and_license(
    raw_pyproject: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = raw_pyproject["project"]
    # README.md through `readme` (also the long description), LICENSE through
    # `license-files`: setuptools adds both to the sdist by itself.
    assert project["readme"] == "README.md" and (ROOT / "README.md").is_file()
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"] and (ROOT / "LICENSE").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    # Everything else through MANIFEST.in, evaluated by setuptools' own file list.
    monkeypatch.chdir(ROOT)
    files = FileList()
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            files.process_template_line(line)
    shipped = set(files.files)
    for name in ("CHANGELOG.md", "docs/index.md", "examples/conftest.py"):
        assert name in shipped, f"MANIFEST.in leaves {name} out of the sdist"
    assert not [f for f in shipped if "__pycache__" in f], "the sdist would ship __pycache__"


def test_the_metadata_twine_checks_is_there(raw_pyproject: dict[str, Any]) -> None:
    project = raw_pyproject["project"]
    assert project["description"] and "\n" not in project["description"]
    classifiers = project["classifiers"]
    assert "Framework :: Pytest" in classifiers and "Typing :: Typed" in classifiers
    # A license classifier beside an SPDX `license` is an error for setuptools >= 77.
    assert not [c for c in classifiers if c.startswith("License ::")]
    dev = project["optional-dependencies"]["dev"]
    assert {re.split(r"[<>=\[]", d)[0] for d in dev} >= {"build", "twine", "setuptools"}
    assert project["entry-points"]["pytest11"] == {
        "ws_resilience": "pytest_ws_resilience.plugin.entry"
    }


def _invocations(text: str, prefix: str, cookbook: str) -> list[list[str]]:
    """The pytest argument lists of a recipe: one per line starting with prefix."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line.startswith(prefix):
            continue
        line = line[len(prefix) :].split("; $(NO_TESTS_IS_FAILURE)")[0]
        line = line.replace(cookbook, "examples/cookbook")
        found.append(shlex.split(line))
    return found


def test_the_wheel_check_runs_the_examples_as_make_demo_does() -> None:
    makefile = (ROOT / "Makefile").read_text()
    demo = re.search(r"^demo:.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert demo is not None, "the Makefile lost its demo target"
    expected = _invocations(demo.group(1), "$(BIN)/pytest ", "$(COOKBOOK)")
    script = (ROOT / ".ci" / "wheel-check").read_text()
    actual = _invocations(script, "run_pytest ", "$COOKBOOK")
    assert len(expected) >= 7, expected
    assert actual == expected


def test_ci_runs_the_wheel_check_after_the_demo() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make wheel-check" in lines, ".ci/run does not run the wheel check"
    assert lines.index("make wheel-check") > lines.index("make demo") > lines.index("make test")
    assert (ROOT / ".ci" / "wheel-check").stat().st_mode & 0o111, ".ci/wheel-check: not executable"
