"""What travels between the xdist controller and its workers: one payload each way.

Down, in ``workerinput``: `RunHandoff`, what the run's first process decided for every
process of the run (the run id that labels its containers, the pid owning them, the
state directory, the HS256 secret, the chaos seed, the shared app's URL). The
controller builds it once (`RunHandoff.new` at configure, `with_shared_app` once the app
is up) and gives it to each worker in ``pytest_configure_node``; a worker reads it once,
at configure, before loading its settings. Without xdist the one process makes its own
and nothing travels.

Up, in ``workeroutput``: `WorkerResults`, what a worker hands back when it finishes
(its report records and its scheduling tally), read by the controller in
``pytest_testnodedown``.

Plain data only (execnet sends dicts of str, int and None); no pytest here.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tempfile
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_ws_resilience.chaos.seeds import new_run_seed
from pytest_ws_resilience.servers.labels import new_run_id

__all__ = ["PAYLOAD_KEY", "RunHandoff", "WorkerResults"]

#: The one key of the plugin in ``workerinput`` and in ``workeroutput``.
PAYLOAD_KEY = "ws_resilience"


@dataclass(frozen=True)
class RunHandoff:
    """What every process of one run agrees on; handed from the controller to workers."""

    #: Labels every container of the run (``ws_resilience.run``).
    run_id: str
    #: The pid owning the run's containers (the controller's): a container a worker
    #: started is not taken for a leftover when that worker exits first.
    owner_pid: int
    #: Where the processes of the run record the services they share.
    state_dir: str
    #: The run's seed of the chaos proxies' random faults (``--ws-chaos-seed``, or drawn
    #: once), so a run has one seed however many workers, printed once, replayable.
    chaos_seed: int
    #: The run's HS256 secret, used where no key is configured (the loader decides).
    run_secret: str | None = dataclasses.field(default=None, repr=False)
    #: Under ``app_share``: the URL of the app the controller serves to every worker.
    shared_app_url: str | None = None

    @classmethod
    def new(cls, *, chaos_seed: int | None = None) -> RunHandoff:
        """Draw a run's handoff, in its first process (the only one, or the controller).

        Args:
            chaos_seed: ``--ws-chaos-seed`` when given; drawn at random when None.
        """
        run_id = new_run_id()
        return cls(
            run_id=run_id,
            owner_pid=os.getpid(),
            # Created on first use only: most runs never start a service.
            state_dir=str(Path(tempfile.gettempdir()) / f"ws-resilience-run-{run_id}"),
            chaos_seed=new_run_seed() if chaos_seed is None else chaos_seed,
            run_secret=secrets.token_urlsafe(32),
        )

    def with_shared_app(self, url: str) -> RunHandoff:
        """The same handoff, naming the app the controller now serves."""
        return dataclasses.replace(self, shared_app_url=url)

    def to_workerinput(self, workerinput: MutableMapping[str, Any]) -> None:
        """Put this handoff into a worker's ``workerinput`` (the controller's side)."""
        workerinput[PAYLOAD_KEY] = dataclasses.asdict(self)

    @classmethod
    def from_workerinput(cls, workerinput: Mapping[str, Any] | None) -> RunHandoff | None:
        """The handoff a worker received; None outside a worker, or when the controller
        sent none (it runs without this plugin)."""
        data = (workerinput or {}).get(PAYLOAD_KEY)
        return None if data is None else cls(**data)


@dataclass(frozen=True)
class WorkerResults:
    """What a worker hands back to the controller when it finishes.

    Attributes:
        report: its run-report source (``report.aggregate.Source.to_payload``).
        scheduling: its scheduling tally (``xdist_groups.SchedulingTally.as_dict``);
            None when it collected nothing.
    """

    report: dict[str, Any] | None = None
    scheduling: dict[str, Any] | None = None

    def to_workeroutput(self, workeroutput: MutableMapping[str, Any]) -> None:
        """Put these results into ``workeroutput`` (the worker's side, at session end)."""
        workeroutput[PAYLOAD_KEY] = dataclasses.asdict(self)

    @classmethod
    def from_workeroutput(cls, workeroutput: Mapping[str, Any] | None) -> WorkerResults | None:
        """A finished worker's results; None when it went down without handing any."""
        data = (workeroutput or {}).get(PAYLOAD_KEY)
        return None if data is None else cls(**data)
