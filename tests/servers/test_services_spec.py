"""Pure logic of the services: specs and their TOML tables, the leftover rule, the host
mounts. No Docker, no sockets (the readiness rule is tested in test_readiness.py)."""

from __future__ import annotations

import os
import sys

import pytest

from pytest_ws_resilience.config.services import ServiceSpec, parse_services
from pytest_ws_resilience.errors import ServiceSpecError, WsConfigError
from pytest_ws_resilience.redaction import register_secret
from pytest_ws_resilience.servers.images import host_python_mounts
from pytest_ws_resilience.servers.labels import (
    LABEL_HOST,
    LABEL_PID,
    LABEL_REUSE,
    LABEL_RUN,
    container_labels,
    current_owner_pid,
    is_leftover,
)

ORIGIN = "pyproject.toml"


def test_image_means_docker_and_command_alone_means_a_local_process() -> None:
    assert ServiceSpec("a", image="img").backend == "docker"
    assert ServiceSpec("a", image="img", command="serve").backend == "docker"
    assert ServiceSpec("a", command="serve --port {port}").backend == "process"


def test_resolve_fills_the_port_in_command_env_and_path() -> None:
    spec = ServiceSpec(
        "svc",
        command="server --listen 127.0.0.1:{port} --name 'two words'",
        env={"PORT": "{port}", "MODE": "test"},
        path="/ws/{port}",
    )
    resolved = spec.resolve(4321)
    assert resolved.argv == ("server", "--listen", "127.0.0.1:4321", "--name", "two words")
    assert resolved.env == {"PORT": "4321", "MODE": "test"}
    assert resolved.url == "ws://127.0.0.1:4321/ws/4321"
    assert ServiceSpec("svc", command=["a", "{port}"]).resolve(1).argv == ("a", "1")


def test_a_fixed_port_cannot_be_resolved_elsewhere() -> None:
    spec = ServiceSpec("svc", command="x", port=8000)
    assert spec.resolve(8000).port == 8000
    with pytest.raises(ServiceSpecError, match="fixes port 8000"):
        spec.resolve(8001)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "service 'svc': set image (a Docker container) or command (a local process)"),
        ({"command": "x", "health": "grpc"}, "health = 'grpc' is invalid: expected one of"),
        ({"command": "x", "port": 70000}, "port = 70000 is invalid"),
        ({"command": "x", "port": True}, "port = True is invalid"),
        ({"command": "x", "health": "tcp", "auth": True}, "auth and ping need health"),
        ({"command": "x", "path": "ws"}, "path = 'ws' is invalid"),
        ({"command": "x", "startup_timeout": 0}, "startup_timeout = 0 is invalid"),
        ({"command": "x", "mounts": {"/a": "/b"}}, "mounts needs an image"),
        ({"command": "x", "reuse": True}, "reuse needs an image"),
        ({"image": "i", "mounts": {"rel": "/b"}}, "use absolute paths"),
        ({"command": "  "}, "command is empty"),
    ],
)
def test_bad_specs_fail_with_one_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ServiceSpecError) as info:
        ServiceSpec("svc", **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, WsConfigError) and isinstance(info.value, ValueError)


def test_bad_names_are_refused() -> None:
    with pytest.raises(ServiceSpecError, match="service name 'a b' is invalid"):
        ServiceSpec("a b", command="x")


def test_the_fingerprint_is_stable_and_tells_specs_apart() -> None:
    a = ServiceSpec("svc", image="img", command=["serve", "{port}"], env={"A": "1"})
    same = ServiceSpec("svc", image="img", command="serve {port}", env={"A": "1"})
    assert a.fingerprint() == same.fingerprint() and a == same and hash(a) == hash(same)
    assert a.fingerprint() != ServiceSpec("svc", image="img2", command="serve {port}").fingerprint()
    assert a.fingerprint() != ServiceSpec("svc", image="img", env={"A": "2"}).fingerprint()


def test_the_repr_hides_env_values_and_registered_secrets() -> None:
    secret = "s3cr3t-for-the-repr-test"
    register_secret(secret)
    spec = ServiceSpec("svc", command=f"serve --secret={secret}", env={"KEY": "hidden-value"})
    text = repr(spec)
    assert secret not in text and "hidden-value" not in text
    assert "KEY" in text and "<redacted>" in text


def test_parse_services_builds_specs_from_tables() -> None:
    specs = parse_services(
        {
            "backend": {
                "image": "backend:dev",
                "command": ["serve", "--port={port}"],
                "env": {"LOG": "debug", "WORKERS": 2},
                "auth": True,
                "ping": True,
                "startup_timeout": 30,
                "mounts": {"/srv/config": "/config"},
            },
            "worker": {"command": "python -m worker {port}", "health": "tcp"},
        },
        origin=ORIGIN,
    )
    assert specs["backend"].env == {"LOG": "debug", "WORKERS": "2"}
    assert specs["backend"].command == ("serve", "--port={port}")
    assert specs["worker"].backend == "process" and specs["worker"].health == "tcp"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"svc": {"image": "i", "startup_timout": 3}},
            "pyproject.toml [tool.ws_resilience.services.svc]: unknown key 'startup_timout' "
            "(did you mean 'startup_timeout'?)",
        ),
        (
            {"svc": {"image": "i", "auth": "yes"}},
            "pyproject.toml [tool.ws_resilience.services.svc]: auth = 'yes' is invalid: "
            "expected true or false",
        ),
        (
            {"svc": {"command": 3}},
            "command = 3 is invalid: expected a string or a list of strings",
        ),
        ({"svc": {"image": "i", "env": ["A=1"]}}, "env = ['A=1'] is invalid"),
        ({"svc": "image"}, "[tool.ws_resilience.services.svc]: expected a table"),
        (
            {"svc": {"health": "tcp"}},
            "[tool.ws_resilience.services.svc]: service 'svc': set image",
        ),
    ],
)
def test_parse_services_errors_are_one_line(table: dict[str, object], message: str) -> None:
    with pytest.raises(ServiceSpecError) as info:
        parse_services(table, origin=ORIGIN)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# -- labels and leftovers -------------------------------------------------------------------


def test_labels_say_who_made_the_container() -> None:
    labels = container_labels(run_id="r1", service="svc", spec_hash="h", port=9, created=5)
    assert labels[LABEL_RUN] == "r1" and labels[LABEL_PID] == str(current_owner_pid())
    assert labels["ws_resilience.created"] == "5" and LABEL_REUSE not in labels
    assert (
        container_labels(run_id="r", service="s", spec_hash="h", port=1, reuse=True)[LABEL_REUSE]
        == "1"
    )


@pytest.mark.parametrize(
    ("changes", "alive", "leftover"),
    [
        ({}, False, True),
        ({}, True, False),
        ({LABEL_RUN: "current"}, False, False),
        ({LABEL_HOST: "elsewhere"}, False, False),
        ({LABEL_REUSE: "1"}, False, False),
        ({LABEL_PID: "garbage"}, False, False),
    ],
)
def test_only_dead_runs_of_this_host_are_leftovers(
    changes: dict[str, str], alive: bool, leftover: bool
) -> None:
    labels = {LABEL_RUN: "old", LABEL_PID: "4242", LABEL_HOST: "here", **changes}
    assert (
        is_leftover(labels, host="here", current_run="current", owner_alive=lambda _: alive)
        is leftover
    )


def test_host_mounts_cover_python_the_venv_and_this_project_without_nesting() -> None:
    mounts = host_python_mounts()
    roots = list(mounts)
    assert all(host == inside for host, inside in mounts.items())
    for needed in (
        sys.prefix,
        sys.base_prefix,
        os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    ):
        real = os.path.realpath(needed)
        assert any(real == r or real.startswith(r + "/") for r in roots), needed
    for a in roots:
        assert not any(b != a and a.startswith(b + "/") for b in roots)
