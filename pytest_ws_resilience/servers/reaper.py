"""Removing labelled containers: a dead run's leftovers, and a finished run's own.

`reap_leftovers` runs at session start and covers what no teardown can: a run killed
with SIGKILL, an IDE's stop button, a lost CI job. `remove_run` is the end-of-run
sweep of the process that owns the run (the xdist controller, never a worker).

Reapers race: the controller and every worker of the next run may reap the same dead
run's containers at once. A container another reaper is removing (Docker's 409
"removal of container ... is already in progress") or has removed (404 "No such
container") is gone as far as this one is concerned: success, not an error
(`gone_already`).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from pytest_ws_resilience.servers.labels import (
    LABEL_PREFIX,
    LABEL_REUSE,
    LABEL_RUN,
    is_leftover,
)
from pytest_ws_resilience.servers.process_backend import process_alive

__all__ = ["gone_already", "labelled_containers", "list_containers", "reap_leftovers", "remove_run"]


def list_containers(client: Any, filters: dict[str, Any], *, all: bool = True) -> list[Any]:
    """The containers matching ``filters``, skipping any that vanish while listed.

    docker-py lists, then inspects each container; one that another process removes in
    between (a concurrent reaper, a run stopping its service) would fail the whole
    listing with 404. Listing sparse and inspecting one by one lets it simply drop out.
    """
    found = []
    for sparse in client.containers.list(all=all, filters=filters, sparse=True):
        try:
            found.append(client.containers.get(sparse.id))
        except Exception as err:  # docker.errors.NotFound, without importing docker here
            if not gone_already(err):
                raise
    return found


def labelled_containers(client: Any, **label_values: str) -> list[Any]:
    """Every container (running or not) carrying our run label, optionally filtered by
    ``label=value`` pairs (keys without the ``ws_resilience.`` prefix)."""
    labels = [LABEL_RUN] + [f"{LABEL_PREFIX}{k}={v}" for k, v in label_values.items()]
    return list_containers(client, {"label": labels})


def gone_already(err: BaseException) -> bool:
    """True when a failed removal means the container is gone or going: removed by
    someone else (404, "No such container"), or being removed by someone else right
    now (409 "removal of container ... is already in progress")."""
    text = str(err)
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status == 404 or "No such container" in text or "404" in text.split(":", 1)[0]:
        return True
    conflict = status == 409 or "409" in text.split(":", 1)[0]
    return conflict and ("already in progress" in text or "marked for removal" in text)


def _force_remove(container: Any) -> bool:
    try:
        container.remove(force=True)
    except Exception as err:
        # Gone already (another reaper was first): fine; anything else is reported.
        if gone_already(err):
            return False
        raise
    return True


def reap_leftovers(
    client: Any,
    *,
    current_run: str,
    host: str | None = None,
    only: Mapping[str, str] | None = None,
) -> list[str]:
    """Force-remove labelled containers of this host whose owner process is gone.

    Containers of ``current_run``, of other hosts, kept for reuse, or whose owner is
    alive are left alone. ``only`` narrows the sweep to containers with those label
    values (keys without the ``ws_resilience.`` prefix, e.g. ``{"service": "db"}``).

    Returns:
        The names of the removed containers.
    """
    here = socket.gethostname() if host is None else host
    removed: list[str] = []
    for container in labelled_containers(client, **(only or {})):
        labels = container.labels or {}
        if is_leftover(labels, host=here, current_run=current_run, owner_alive=process_alive):
            if _force_remove(container):
                removed.append(str(container.name))
    return removed


def remove_run(client: Any, run_id: str, timeout: float = 10.0) -> int:
    """Stop and remove every container of ``run_id`` except those kept for reuse.

    Args:
        timeout: grace between SIGTERM and SIGKILL for each container.

    Returns:
        How many containers were removed.
    """
    count = 0
    for container in labelled_containers(client, run=run_id):
        if (container.labels or {}).get(LABEL_REUSE) == "1":
            continue
        try:
            if container.status == "running":
                container.stop(timeout=max(0, int(timeout)))
        except Exception:
            pass  # stuck or gone: the forced removal settles it
        if _force_remove(container):
            count += 1
    return count
