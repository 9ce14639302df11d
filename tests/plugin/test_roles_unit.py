"""The role helper and the controller/worker payloads, as plain functions and data."""

from __future__ import annotations

import json
import os

import pytest

from pytest_ws_resilience.plugin.handoff import PAYLOAD_KEY, RunHandoff, WorkerResults
from pytest_ws_resilience.plugin.roles import role_for, worker_id_in

# -- roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dist", ["no", "load", "loadgroup", "each"])
def test_a_process_with_workerinput_is_a_worker_whatever_its_dist(dist: str) -> None:
    # xdist sets dist to "no" on its workers; the workerinput alone tells.
    assert role_for(dist=dist, workerinput={"workerid": "gw0"}) == "worker"


def test_without_workerinput_dist_no_is_the_only_process() -> None:
    assert role_for(dist="no", workerinput=None) == "single"


@pytest.mark.parametrize("dist", ["load", "loadgroup", "loadscope", "loadfile", "worksteal"])
def test_without_workerinput_any_dist_mode_is_the_controller(dist: str) -> None:
    assert role_for(dist=dist, workerinput=None) == "controller"


def test_the_worker_id_is_xdists() -> None:
    assert worker_id_in({"workerid": "gw3", "testrunuid": "x"}) == "gw3"
    assert worker_id_in({}) == "worker"


# -- the workerinput payload ---------------------------------------------------------------


def test_a_new_handoff_is_drawn_for_this_process() -> None:
    run = RunHandoff.new(chaos_seed=1234)
    assert run.owner_pid == os.getpid()
    assert run.chaos_seed == 1234
    assert run.run_id and run.run_id in run.state_dir
    assert run.run_secret and run.shared_app_url is None
    other = RunHandoff.new()
    assert other.run_id != run.run_id and other.run_secret != run.run_secret
    assert isinstance(other.chaos_seed, int)


def test_the_handoff_survives_the_trip_to_a_worker() -> None:
    run = RunHandoff.new(chaos_seed=7).with_shared_app("ws://127.0.0.1:4100/ws")
    workerinput: dict[str, object] = {"workerid": "gw0", "testrunuid": "abc"}
    run.to_workerinput(workerinput)
    # execnet sends plain data: the payload is JSON-able as it stands.
    sent = json.loads(json.dumps(workerinput))
    assert set(sent) == {"workerid", "testrunuid", PAYLOAD_KEY}
    assert RunHandoff.from_workerinput(sent) == run


def test_no_handoff_outside_a_worker_or_from_a_controller_without_the_plugin() -> None:
    assert RunHandoff.from_workerinput(None) is None
    assert RunHandoff.from_workerinput({"workerid": "gw0"}) is None


def test_the_run_secret_stays_out_of_the_handoffs_repr() -> None:
    run = RunHandoff.new()
    assert run.run_secret is not None
    assert run.run_secret not in repr(run)


# -- the workeroutput payload --------------------------------------------------------------


def test_worker_results_survive_the_trip_to_the_controller() -> None:
    results = WorkerResults(report={"worker": "gw1", "records": []}, scheduling={"serialized": 2})
    workeroutput: dict[str, object] = {"exitstatus": 0}
    results.to_workeroutput(workeroutput)
    sent = json.loads(json.dumps(workeroutput))
    assert WorkerResults.from_workeroutput(sent) == results


def test_a_worker_that_went_down_has_no_results() -> None:
    assert WorkerResults.from_workeroutput(None) is None
    assert WorkerResults.from_workeroutput({"exitstatus": 1}) is None
