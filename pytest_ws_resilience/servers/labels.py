"""Container labels, and the pure rule that decides which labelled container is a leftover.

Every container this package starts says who made it (run id, owner pid, host, time),
so the next run can tell a crashed run's containers (owner pid gone) from those of a
run still going on this or another host. No Docker calls here: `reaper` applies it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping

__all__ = [
    "LABEL_CREATED",
    "LABEL_HOST",
    "LABEL_PID",
    "LABEL_PORT",
    "LABEL_PREFIX",
    "LABEL_REUSE",
    "LABEL_RUN",
    "LABEL_SERVICE",
    "LABEL_SPEC",
    "RUN_ID_ENV",
    "RUN_OWNER_PID_ENV",
    "RUN_STATE_DIR_ENV",
    "container_labels",
    "current_owner_pid",
    "current_run_id",
    "is_leftover",
    "new_run_id",
]

LABEL_PREFIX = "ws_resilience."
LABEL_RUN = "ws_resilience.run"
LABEL_PID = "ws_resilience.pid"
LABEL_HOST = "ws_resilience.host"
LABEL_CREATED = "ws_resilience.created"
LABEL_SERVICE = "ws_resilience.service"
#: `ServiceSpec.fingerprint`: how ``reuse=True`` finds the same service again.
LABEL_SPEC = "ws_resilience.spec"
#: The host-network port the service listens on (a reused container keeps its port).
LABEL_PORT = "ws_resilience.port"
#: "1" on ``reuse=True`` containers: kept across runs, never reaped.
LABEL_REUSE = "ws_resilience.reuse"

#: Set by the run's first process (the xdist controller) so workers label with its id.
RUN_ID_ENV = "WS_RESILIENCE_RUN_ID"
#: Set by the same process to its pid: a container a worker starts for the whole run
#: is owned by the controller, so it is not reaped as soon as that worker ends.
RUN_OWNER_PID_ENV = "WS_RESILIENCE_RUN_OWNER_PID"

#: Set by every process of a run to the run's state directory: the local processes
#: the library starts are recorded there (so a next run can reap them) and log there.
RUN_STATE_DIR_ENV = "WS_RESILIENCE_RUN_STATE_DIR"

_process_run_id: str | None = None


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def current_run_id() -> str:
    """The run id: ``$WS_RESILIENCE_RUN_ID`` when set (xdist workers inherit the
    controller's), else one generated once per process."""
    global _process_run_id
    from_env = os.environ.get(RUN_ID_ENV, "").strip()
    if from_env:
        return from_env
    if _process_run_id is None:
        _process_run_id = new_run_id()
    return _process_run_id


def current_owner_pid() -> int:
    """The pid that owns this run's containers: ``$WS_RESILIENCE_RUN_OWNER_PID`` when
    set (the xdist controller's), else this process."""
    try:
        return int(os.environ.get(RUN_OWNER_PID_ENV, ""))
    except ValueError:
        return os.getpid()


def container_labels(
    *,
    run_id: str,
    service: str,
    spec_hash: str,
    port: int,
    reuse: bool = False,
    pid: int | None = None,
    host: str | None = None,
    created: float | None = None,
) -> dict[str, str]:
    """The labels of a new container (owner pid, host and time default to
    `current_owner_pid`, this host and now)."""
    labels = {
        LABEL_RUN: run_id,
        LABEL_PID: str(current_owner_pid() if pid is None else pid),
        LABEL_HOST: socket.gethostname() if host is None else host,
        LABEL_CREATED: str(int(time.time() if created is None else created)),
        LABEL_SERVICE: service,
        LABEL_SPEC: spec_hash,
        LABEL_PORT: str(port),
    }
    if reuse:
        labels[LABEL_REUSE] = "1"
    return labels


def is_leftover(
    labels: Mapping[str, str],
    *,
    host: str,
    current_run: str,
    owner_alive: Callable[[int], bool],
) -> bool:
    """True when a labelled container belongs to a dead run of this host.

    Kept: containers of the current run, of another host (its pids mean nothing
    here), reusable ones, and any whose owner pid is alive or unreadable.
    """
    if labels.get(LABEL_REUSE) == "1" or labels.get(LABEL_RUN) == current_run:
        return False
    if labels.get(LABEL_HOST) != host:
        return False
    try:
        pid = int(labels.get(LABEL_PID, ""))
    except ValueError:
        return False
    return pid > 0 and not owner_alive(pid)
