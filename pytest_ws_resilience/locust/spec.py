"""`RunSpec`: everything a Locust worker needs to play a run, and nothing secret.

Pure data. Built once, by the process that starts the run (``ws_storm.distributed``
in pytest, or ``ws-resilience-load --master``), encoded as one text value and given to
the Locust master in an environment variable (`SPEC_ENV`, never on a command line);
the master hands it to every worker in Locust's spawn message (a custom command-line
option travels with ``parsed_options``), so workers on other machines get it too.

What it does NOT carry: a key. A worker resolves its `WsSettings` as the plugin does
(`worker_settings`: `load_settings` with the run's env and URL, the project's
``[tool.ws_resilience]`` table and its own environment), so a profile's
``jwt_secret_env`` / ``jwt_private_key_env`` are read from the worker's environment,
and the run's own HS256 secret (no key configured) from `SECRET_ENV`. Local workers
inherit the starting process's environment; remote ones are given it by whoever starts
them (docs/distributed-load.md).
"""

from __future__ import annotations

import base64
import pickle
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_ws_resilience.config.loading import CommandLine, load_settings, read_tool_config
from pytest_ws_resilience.config.settings import WsSettings

if TYPE_CHECKING:
    from pytest_ws_resilience.load.scenario import Scenario

__all__ = [
    "PROJECT_DIR_ENV",
    "RESULTS_ENV",
    "SECRET_ENV",
    "SPEC_ENV",
    "SPEC_OPTION",
    "RunSpec",
    "worker_settings",
]

#: The run's spec (`RunSpec.encode`), read by the master's ``--ws-spec`` option.
SPEC_ENV = "WS_RESILIENCE_LOCUST_SPEC"
#: The master's option carrying the spec to the workers (with ``parsed_options``).
SPEC_OPTION = "ws_spec"
#: Where the master writes the run's statistics document (JSON) when it quits.
RESULTS_ENV = "WS_RESILIENCE_LOCUST_RESULTS"
#: A worker's own project directory (its ``pyproject.toml``), over the spec's.
PROJECT_DIR_ENV = "WS_RESILIENCE_PROJECT_DIR"
#: The run's HS256 secret when no key is configured: the same variable the reference
#: server reads (``ws-resilience-server``), so one export serves both.
SECRET_ENV = "WS_RESILIENCE_SECRET"


@dataclass(frozen=True)
class RunSpec:
    """One distributed run, as every worker plays it.

    Attributes:
        scenario: what each user plays (a `Scenario`: pure and picklable).
        url: the server under test (``ws://`` or ``wss://``).
        users: how many users the run spawns in all; each plays the scenario once.
        env: the settings profile (``local``, ``staging``... or a custom one).
        project_dir: where the ``pyproject.toml`` with ``[tool.ws_resilience]`` lives
            (a remote worker may give its own).
        isolation: each worker runs the isolation detector over its users.
        reconnects: how many times a user replays the scenario after its connection
            dropped (with the settings' backoff between), 0: never.
        label: names the run in reports.
        run_id: tells this run from the others a long-lived master plays.
    """

    scenario: Scenario
    url: str
    users: int
    env: str = "local"
    project_dir: str | None = None
    isolation: bool = True
    reconnects: int = 0
    label: str = ""
    #: Tells one run from the next on a long-lived master (drawn by whoever starts it).
    run_id: str = ""

    def encode(self) -> str:
        """This spec as one line of text (pickled, compressed, base64)."""
        return base64.b64encode(zlib.compress(pickle.dumps(self))).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> RunSpec:
        """The spec `encode` wrote.

        Raises:
            ValueError: not a spec (one line).
        """
        try:
            spec = pickle.loads(zlib.decompress(base64.b64decode(text.encode("ascii"))))
        except Exception as err:
            raise ValueError(f"not a run spec ({type(err).__name__}: {err})") from None
        if not isinstance(spec, cls):
            raise ValueError(f"not a run spec: a {type(spec).__name__}")
        return spec


def worker_settings(
    spec: RunSpec, environ: Mapping[str, str], project_dir: str | None = None
) -> WsSettings:
    """The settings a worker plays ``spec`` with, resolved as the plugin resolves them:
    the spec's env and URL over the project's ``[tool.ws_resilience]`` table, the keys
    from ``environ`` (the run's secret from `SECRET_ENV` when no key is configured).

    Args:
        project_dir: overrides ``spec.project_dir`` (a remote worker's checkout).

    Raises:
        WsConfigError: the configuration is wrong here (e.g. the secret variable a
            profile names is not set on this machine): one line.
    """
    where = project_dir or spec.project_dir
    pyproject = Path(where) / "pyproject.toml" if where else None
    return load_settings(
        cli=CommandLine(env=spec.env, url=spec.url),
        environ=environ,
        tool_config=read_tool_config(pyproject),
        tool_config_origin=str(pyproject) if pyproject else "pyproject.toml",
        run_secret=environ.get(SECRET_ENV) or None,
        project_dir=where,
    )
