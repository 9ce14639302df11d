"""Which part a pytest process plays in the run: the one role helper of the plugin.

Under pytest-xdist a run is several processes: one controller, which collects nothing
and hands tests out, and the workers, which run them. Without xdist (or with ``-n 0``)
one process does everything. The plugin registers one role object per process
(`pytest_ws_resilience.plugin.session`, ``controller``, ``worker``), chosen here; every
other piece of the plugin that must know the role asks this module, so the rule is
written once.

The rule is xdist's own (``xdist.plugin.is_xdist_worker`` / ``is_xdist_controller``): a
worker has ``config.workerinput``; a controller is any other process whose ``--dist``
is not ``no``. It does not import xdist, so it works where xdist is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pytest

__all__ = [
    "Role",
    "process_name",
    "role_for",
    "role_of",
    "worker_id",
    "worker_id_in",
    "xdist_loaded",
]

#: ``single``: the only process (no xdist, or ``-n 0``); ``controller``: xdist's
#: controller, which runs no test; ``worker``: an xdist worker ("gw0", ...).
Role = Literal["single", "controller", "worker"]


def role_for(*, dist: str, workerinput: Mapping[str, Any] | None) -> Role:
    """The role of a process, from the facts xdist leaves on its config.

    Args:
        dist: ``config.option.dist`` (``"no"`` when xdist is absent or not
            distributing; xdist sets it to ``"no"`` on its workers too).
        workerinput: ``config.workerinput``, which only an xdist worker has; None
            elsewhere.
    """
    if workerinput is not None:
        return "worker"
    return "single" if dist == "no" else "controller"


def role_of(config: pytest.Config) -> Role:
    """The role of the process ``config`` belongs to (see `role_for`)."""
    return role_for(
        dist=str(getattr(config.option, "dist", "no")),
        workerinput=getattr(config, "workerinput", None),
    )


def worker_id(config: pytest.Config) -> str | None:
    """The xdist worker id ("gw0", ...) in a worker process, else None."""
    workerinput: Mapping[str, Any] | None = getattr(config, "workerinput", None)
    return None if workerinput is None else worker_id_in(workerinput)


def worker_id_in(workerinput: Mapping[str, Any]) -> str:
    """The worker id a ``workerinput`` names (a worker's own, or one the controller's
    ``node.workerinput`` holds)."""
    return str(workerinput.get("workerid", "worker"))


def process_name(config: pytest.Config) -> str:
    """How the run's report names this process: the worker id, ``controller`` or
    ``main`` (the only process)."""
    role = role_of(config)
    if role == "worker":
        return worker_id(config) or "worker"
    return "controller" if role == "controller" else "main"


def xdist_loaded(config: pytest.Config) -> bool:
    """True when pytest-xdist is installed and not disabled (``-p no:xdist``)."""
    return bool(config.pluginmanager.hasplugin("xdist"))
