"""A distributed run on a Locust master that is already running (``--ws-locust-master``).

The master is started apart, with its web UI (``ws-resilience-load --master
--web-port PORT``), and so are its workers, on their machines. The test plays a run on
it through Locust's own HTTP API: ``POST /swarm`` with the user count, the spawn rate,
the server under test and the run's spec (a custom option: Locust passes it to the
workers), then reads the run's progress and statistics at `RUN_ROUTE`, which our
locustfile adds to the master's web UI. No process is started here; the master stays
up for the next run.

Every wait is bounded: the master's answer and its workers (``startup_timeout``), the
run (``run_time``: then ``POST /stop``), the stop and the last statistics (a margin).
Plain HTTP over urllib; no Locust in this process.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pytest_ws_resilience.errors import LocustRunError
from pytest_ws_resilience.locust.distributed import DistributedRun
from pytest_ws_resilience.locust.spec import SPEC_OPTION
from pytest_ws_resilience.locust.stats import RUN_ROUTE, DistributedResult, distributed_result

__all__ = ["run_on_master"]

# One HTTP request's bound, and the pause between two polls.
_REQUEST_S = 10.0
_POLL_S = 0.25
# After run_time, or after every user is done: the stop and the last statistics.
_STOP_MARGIN_S = 30.0
# Locust's runner states of a master that plays no run.
_IDLE = frozenset({"ready", "stopped"})


def _get(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + RUN_ROUTE, timeout=_REQUEST_S) as answer:
        data: dict[str, Any] = json.loads(answer.read())
        return data


def _post(base: str, path: str, form: dict[str, str]) -> dict[str, Any]:
    body = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(base + path, data=body, timeout=_REQUEST_S) as answer:
        data: dict[str, Any] = json.loads(answer.read() or b"{}")
        return data


def _wait_ready(base: str, run: DistributedRun) -> None:
    """The master answers, has our route, plays no run and has its workers."""
    deadline = time.monotonic() + run.startup_timeout
    last = "no answer"
    while True:
        try:
            state = _get(base)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                raise LocustRunError(
                    f"the Locust master at {base} does not serve ws-resilience runs (no "
                    f"{RUN_ROUTE}): start it with ws-resilience-load --master --web-port"
                ) from None
            last = f"HTTP {err.code}"
        except (OSError, ValueError) as err:
            last = f"{type(err).__name__}: {err}"
        else:
            if state.get("state") not in _IDLE and state.get("state") != "none":
                last = f"it is busy with another run (state {state.get('state')})"
            elif int(state.get("workers", 0)) >= run.workers:
                return
            else:
                last = f"{state.get('workers', 0)} of {run.workers} workers connected"
        if time.monotonic() >= deadline:
            raise LocustRunError(
                f"the Locust master at {base} was not ready within startup_timeout="
                f"{run.startup_timeout:g}s: {last}"
            )
        time.sleep(_POLL_S)


def run_on_master(run: DistributedRun, web: tuple[str, int]) -> DistributedResult:
    """Play ``run`` on the master whose web UI is at ``web`` (host, port).

    Raises:
        LocustRunError: the master does not answer, does not serve our runs, is busy,
            lacks workers, refuses the run, or never reports its end (bounded).
    """
    host, port = web
    base = f"http://{host}:{port}"
    spec = run.spec
    _wait_ready(base, run)
    answer = _post(
        base,
        "/swarm",
        {
            "user_count": str(spec.users),
            "spawn_rate": f"{run.spawn_rate:g}",
            "host": spec.url,
            SPEC_OPTION: spec.encode(),
        },
    )
    if not answer.get("success", False):
        raise LocustRunError(f"the Locust master at {base} refused the run: {answer}")
    started = time.monotonic()
    stop_at = started + run.run_time
    give_up = stop_at + _STOP_MARGIN_S
    stopped = False
    state: dict[str, Any] = {}
    while True:
        try:
            state = _get(base)
        except (OSError, ValueError) as err:
            raise LocustRunError(f"the Locust master at {base} stopped answering: {err}") from None
        ours = state.get("run_id") == spec.run_id
        if ours and state.get("done"):
            break
        if ours and stopped and state.get("state") in _IDLE:
            break  # stopped at run_time: the users that finished are counted
        now = time.monotonic()
        if now >= stop_at and not stopped:
            _post(base, "/stop", {})
            stopped = True
        if now >= give_up:
            raise LocustRunError(
                f"the run on the Locust master at {base} did not end within run_time="
                f"{run.run_time:g}s + {_STOP_MARGIN_S:g}s (state {state.get('state')})"
            )
        time.sleep(_POLL_S)
    label = spec.label or f"distributed {spec.scenario.name} users={spec.users}"
    return distributed_result(state.get("document", {}), label=label, users=spec.users)
