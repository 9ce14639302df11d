"""The pure parts of a distributed run: the run's spec, the settings a worker resolves,
the statistics document read into a `DistributedResult`, the bounds of a run. No Locust
here (importing it would monkey-patch this process)."""

from __future__ import annotations

import sys

import pytest

from pytest_ws_resilience.errors import StormThresholdError, WsConfigError
from pytest_ws_resilience.load.scenario import Scenario
from pytest_ws_resilience.locust.distributed import DistributedRun, parse_master
from pytest_ws_resilience.locust.spec import SECRET_ENV, RunSpec, worker_settings
from pytest_ws_resilience.locust.stats import (
    DistributedResult,
    distributed_result,
    failure_text,
    kind_of_failure,
)

PING = Scenario("ping").connect().send({"type": "ping"}).expect(type="pong").close()
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLWJ5dGVz"


def test_a_spec_travels_as_one_line_and_comes_back_equal():
    spec = RunSpec(PING, "ws://127.0.0.1:1/", 10, env="staging", reconnects=2)
    text = spec.encode()
    assert "\n" not in text
    assert RunSpec.decode(text) == spec


def test_a_spec_that_is_not_one_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^not a run spec \(") as caught:
        RunSpec.decode("bm90IGEgc3BlYw==")
    assert "\n" not in str(caught.value)


def test_a_worker_reads_the_runs_secret_from_the_environment_not_the_spec():
    spec = RunSpec(PING, "ws://127.0.0.1:1/", 1)
    assert "run-secret-value" not in spec.encode()
    settings = worker_settings(spec, {SECRET_ENV: "run-secret-value"})
    assert settings.keys.run_secret == "run-secret-value"
    assert settings.server.url == "ws://127.0.0.1:1/"


def test_a_worker_applies_the_profiles_secret_env_and_auth_methods(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ws_resilience.envs.load]\njwt_secret_env = "LOAD_SECRET"\n'
        'auth_methods = ["header"]\n'
    )
    spec = RunSpec(PING, "ws://127.0.0.1:1/", 1, env="load", project_dir=str(tmp_path))
    settings = worker_settings(spec, {"LOAD_SECRET": "profile-secret"})
    assert (settings.env, settings.keys.secret) == ("load", "profile-secret")
    assert settings.auth_methods == ("header",)
    with pytest.raises(WsConfigError, match="LOAD_SECRET but that environment variable is not"):
        worker_settings(spec, {})


def test_failure_texts_carry_their_kind_and_no_secret():
    text = failure_text("auth", f"connect: refused token {JWT}")
    assert JWT not in text
    assert kind_of_failure(text) == "auth"
    assert kind_of_failure(f"Exception({text!r})") == "auth"
    assert kind_of_failure("ConnectionResetError(104)") == "other"


def _document() -> dict:
    return {
        "stats": [
            {
                "name": "connect",
                "method": "WS",
                "num_requests": 4,
                "num_failures": 1,
                "response_times": {"10": 2, "12": 1, "300": 1},
            },
            {
                "name": "rt:ping",
                "method": "WS",
                "num_requests": 3,
                "num_failures": 0,
                "response_times": {"2": 3},
            },
            {
                "name": "/other",
                "method": "GET",
                "num_requests": 9,
                "num_failures": 0,
                "response_times": {"1": 9},
            },
        ],
        "errors": [
            {
                "method": "WS",
                "name": "connect",
                "error": "[refused] connect: refused",
                "occurrences": 1,
            },
            {
                "method": "WS",
                "name": "isolation",
                "error": "[isolation] 1 isolation violation: data of one user reached another",
                "occurrences": 1,
            },
        ],
        "workers": {
            "w2": {"connects": 1, "requests": 2, "failures": 1},
            "w1": {"connects": 3, "requests": 5, "failures": 1},
        },
        "users_finished": 4,
        "users_passed": 3,
        "duration_s": 2.5,
    }


def test_the_masters_statistics_become_the_same_result_as_ws_storms():
    result = distributed_result(_document(), label="run", users=4)
    assert isinstance(result, DistributedResult)
    assert result.connect_ms == [10.0, 10.0, 12.0, 300.0]
    assert result.round_trip_ms == [2.0, 2.0, 2.0]
    assert (result.messages_sent, result.replies_received) == (3, 3)
    assert result.errors["refused"] == 1 and result.errors["isolation"] == 1
    assert (result.attempted, result.succeeded, result.users_finished) == (4, 3, 4)
    assert [s.connects for s in result.workers.values()] == [3, 1]
    assert "data of one user reached another" in result.isolation_reports[0]
    card = result.as_dict()
    assert card["workers"][0] == {"worker": "w1", "connects": 3, "requests": 5, "failures": 1}
    assert "worker w1: 3 connects (75% of 4)" in result.describe()
    with pytest.raises(StormThresholdError, match="isolation=1"):
        result.assert_errors()


def test_a_run_with_nothing_to_count_is_not_a_pass():
    result = distributed_result(
        {
            "stats": [
                {
                    "name": "rt:ping",
                    "method": "WS",
                    "num_requests": 2,
                    "num_failures": 2,
                    "response_times": {"5": 2},
                }
            ]
        },
        label="run",
        users=2,
    )
    with pytest.raises(StormThresholdError, match="no reply seen"):
        result.assert_errors(max=10)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"workers": 0}, "workers"),
        ({"spawn_rate": 0}, "spawn_rate must be a number of users per second > 0"),
        ({"run_time": float("nan")}, "run_time"),
    ],
)
def test_a_bad_run_is_one_line(arguments, message):
    given = {"spawn_rate": 10.0, "workers": 2, "run_time": 30.0, **arguments}
    with pytest.raises(ValueError, match=message) as caught:
        DistributedRun(RunSpec(PING, "ws://127.0.0.1:1/", 5), **given)
    assert "\n" not in str(caught.value)


def test_the_master_option_is_host_and_port():
    assert parse_master("127.0.0.1:5557") == ("127.0.0.1", 5557)
    assert parse_master("[::1]:5557") == ("::1", 5557)
    for bad in ("5557", "host:", "host:99999", ":5557"):
        with pytest.raises(ValueError, match="--ws-locust-master must be HOST:PORT"):
            parse_master(bad)


def test_this_process_never_imported_locust():
    assert "locust" not in sys.modules and "gevent" not in sys.modules
