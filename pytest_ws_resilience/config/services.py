"""What a service is: `ServiceSpec`, from code or ``[tool.ws_resilience.services.NAME]``.

Pure logic: no Docker, no sockets. A spec names its backend by what it sets (``image``:
a Docker container on the host network; only ``command``: a local process) and is
resolved against a port into the exact argv, environment and URL to run and probe.
Every mistake raises `ServiceSpecError` with one line naming the service and the key.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_ws_resilience.config.validation import unknown_key_error
from pytest_ws_resilience.errors import ServiceSpecError
from pytest_ws_resilience.redaction import redact

__all__ = [
    "HEALTH_CHECKS",
    "LOOPBACK_HOST",
    "PORT_PLACEHOLDER",
    "SERVICE_KEYS",
    "Backend",
    "ResolvedService",
    "ServiceSpec",
    "parse_services",
]

Backend = Literal["docker", "process"]

#: Health checks, strongest first: a real WebSocket upgrade (optionally authenticated
#: and with a ping round trip), a bare TCP connect, any HTTP response.
HEALTH_CHECKS = ("websocket", "tcp", "http")
#: Services listen here and nowhere else (containers use the host network).
LOOPBACK_HOST = "127.0.0.1"
#: Replaced by the service's port in ``command``, ``env`` values and ``path``.
PORT_PLACEHOLDER = "{port}"
#: Keys of a ``[tool.ws_resilience.services.NAME]`` table.
SERVICE_KEYS = (
    "image",
    "command",
    "env",
    "port",
    "health",
    "path",
    "auth",
    "ping",
    "startup_timeout",
    "attempt_timeout",
    "reuse",
    "mounts",
)
# Names end up in container names and file names: keep them plain.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass(frozen=True)
class ResolvedService:
    """A spec bound to a port: exactly what to run and where to probe it."""

    name: str
    backend: Backend
    port: int
    #: The command, split and with ``{port}`` filled; empty: the image's own command.
    argv: tuple[str, ...]
    env: dict[str, str] = field(repr=False)
    path: str
    host: str = LOOPBACK_HOST

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/PATH``: what tests and the health check connect to."""
        return f"ws://{self.host}:{self.port}{self.path}"


@dataclass(frozen=True, eq=True)
class ServiceSpec:
    """A service the tests need, started by the plugin and healthy by a real check.

    Args:
        name: the service's name (``ws_services("name")``, container labels).
        image: Docker image; set: the service runs as a container on the host network.
        command: the command (a string, shlex-split, or an argv sequence; kept as a
            tuple); without an image it is run as a local process, with one it
            overrides the image's.
        env: environment variables of the service.
        port: the port it listens on (loopback); None: a free port picked at start.
        health: ``websocket`` (a real upgrade: 101 and a valid ``Sec-WebSocket-Accept``),
            ``tcp`` (connect only) or ``http`` (any HTTP answer): the last two are
            weaker, for services that are not WebSocket servers.
        path: the WebSocket path probed and put in the URL.
        auth: the health check also opens an authenticated connection (a token from
            the run's `TokenFactory`).
        ping: the health check also waits for one ping round trip.
        startup_timeout: the overall deadline of the wait for readiness, seconds.
        attempt_timeout: the bound of one probe, seconds.
        reuse: adopt an already running healthy container of the same spec instead of
            starting one, and leave it running at the end (Docker only).
        mounts: host path -> container path, bind-mounted read-only (Docker only).
        cwd: the directory a local command runs in; None: the project's directory
            (pytest's rootdir, where the configuration lives), so a command written
            next to the configuration (``python server.py``) finds its files however
            pytest was invoked.

    ``{port}`` in ``command``, ``env`` values and ``path`` is filled with the port.

    Raises:
        ServiceSpecError: one line naming the service and what is wrong.
    """

    name: str
    image: str | None = None
    command: str | tuple[str, ...] | None = None
    env: Mapping[str, str] | None = field(default=None, repr=False)
    port: int | None = None
    health: str = "websocket"
    path: str = "/"
    auth: bool = False
    ping: bool = False
    startup_timeout: float = 60.0
    attempt_timeout: float = 2.0
    reuse: bool = False
    mounts: Mapping[str, str] | None = None
    cwd: str | None = None

    def __post_init__(self) -> None:
        # Normalise (a list command becomes a tuple, mappings become plain dict copies)
        # so a spec compares, hashes and serialises the same however it was written.
        if isinstance(self.command, str):
            if not self.command.strip():
                raise self._fail("command is empty")
            try:
                object.__setattr__(self, "command", tuple(shlex.split(self.command)))
            except ValueError as err:
                raise self._fail(f"command cannot be split: {err}") from None
        elif self.command is not None:
            object.__setattr__(self, "command", tuple(str(part) for part in self.command))
        if self.env is not None:
            object.__setattr__(self, "env", {str(k): str(v) for k, v in self.env.items()})
        if self.mounts is not None:
            object.__setattr__(self, "mounts", {str(k): str(v) for k, v in self.mounts.items()})
        self._validate()

    def _fail(self, problem: str) -> ServiceSpecError:
        return ServiceSpecError(f"service {self.name!r}: {problem}")

    def _validate(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise ServiceSpecError(
                f"service name {self.name!r} is invalid: use letters, digits, '_', '.', '-'"
            )
        if self.image is None and self.command is None:
            raise self._fail("set image (a Docker container) or command (a local process)")
        if self.image is not None and (not isinstance(self.image, str) or not self.image):
            raise self._fail(f"image = {self.image!r} is invalid: expected an image name")
        if isinstance(self.command, tuple) and not self.command:
            raise self._fail("command is empty")
        if self.port is not None and (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 0 < self.port < 65536
        ):
            raise self._fail(f"port = {self.port!r} is invalid: expected 1-65535 or unset")
        if self.health not in HEALTH_CHECKS:
            raise self._fail(
                f"health = {self.health!r} is invalid: expected one of {', '.join(HEALTH_CHECKS)}"
            )
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise self._fail(f"path = {self.path!r} is invalid: expected a path starting '/'")
        if (self.auth or self.ping) and self.health != "websocket":
            raise self._fail("auth and ping need health = 'websocket'")
        for key in ("startup_timeout", "attempt_timeout"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise self._fail(f"{key} = {value!r} is invalid: expected seconds > 0")
        if self.image is None and (self.mounts or self.reuse):
            key = "mounts" if self.mounts else "reuse"
            raise self._fail(f"{key} needs an image (a local process has nothing to mount)")
        for host_path, container_path in (self.mounts or {}).items():
            if not host_path.startswith("/") or not container_path.startswith("/"):
                raise self._fail(
                    f"mount {host_path!r} -> {container_path!r} is invalid: use absolute paths"
                )

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        what = f"image={self.image!r}" if self.image else "process"
        command = f", command={redact(shlex.join(self.argv_template()))!r}" if self.command else ""
        env = f", env keys={sorted(self.env)}" if self.env else ""
        return f"ServiceSpec({self.name!r}, {what}{command}{env}, health={self.health!r})"

    @property
    def backend(self) -> Backend:
        """``docker`` when an image is set, else ``process``."""
        return "docker" if self.image is not None else "process"

    def argv_template(self) -> tuple[str, ...]:
        """The command as an argv, ``{port}`` not yet filled; empty: the image's own."""
        if self.command is None:
            return ()
        return tuple(self.command)

    def resolve(self, port: int) -> ResolvedService:
        """Bind the spec to ``port`` (the spec's own, or one picked for it)."""
        if self.port is not None and port != self.port:
            raise self._fail(f"resolved on port {port}, but the spec fixes port {self.port}")
        fill = str(port)
        return ResolvedService(
            name=self.name,
            backend=self.backend,
            port=port,
            argv=tuple(arg.replace(PORT_PLACEHOLDER, fill) for arg in self.argv_template()),
            env={k: v.replace(PORT_PLACEHOLDER, fill) for k, v in (self.env or {}).items()},
            path=self.path.replace(PORT_PLACEHOLDER, fill),
        )

    def fingerprint(self) -> str:
        """A short stable hash of what makes two specs the same service (the
        ``ws_resilience.spec`` label a reused container is found by)."""
        canonical = {
            "name": self.name,
            "image": self.image,
            "argv": list(self.argv_template()),
            "env": dict(sorted((self.env or {}).items())),
            "port": self.port,
            "path": self.path,
            "mounts": dict(sorted((self.mounts or {}).items())),
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- [tool.ws_resilience.services.NAME] ---------------------------------------------------


def _expect(where: str, key: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        shown = redact(repr(value))
        raise ServiceSpecError(f"{where}: {key} = {shown} is invalid: expected {expected}")


def _string_map(where: str, key: str, value: Any) -> dict[str, str]:
    _expect(where, key, value, isinstance(value, dict), "a table of strings")
    for k, v in value.items():
        _expect(
            where,
            f"{key}.{k}",
            v,
            isinstance(v, str | int | float) and not isinstance(v, bool),
            "a string",
        )
    return {str(k): str(v) for k, v in value.items()}


def _table_to_kwargs(where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in SERVICE_KEYS:
            raise ServiceSpecError(unknown_key_error(where, key, SERVICE_KEYS).message)
        if key in ("image", "health", "path"):
            _expect(where, key, value, isinstance(value, str), "a string")
        elif key == "command":
            ok = isinstance(value, str) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            )
            _expect(where, key, value, ok, "a string or a list of strings")
        elif key in ("env", "mounts"):
            value = _string_map(where, key, value)
        elif key == "port":
            _expect(
                where,
                key,
                value,
                isinstance(value, int) and not isinstance(value, bool),
                "an integer port",
            )
        elif key in ("auth", "ping", "reuse"):
            _expect(where, key, value, isinstance(value, bool), "true or false")
        else:  # the timeouts
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            _expect(where, key, value, ok, "seconds (a number)")
        kwargs[key] = value
    return kwargs


def parse_services(table: Mapping[str, Any], *, origin: str) -> dict[str, ServiceSpec]:
    """The specs of a ``[tool.ws_resilience.services]`` table (one sub-table per service).

    Args:
        table: service name -> its table, as read from TOML.
        origin: where the table came from (e.g. the pyproject path), for messages.

    Raises:
        ServiceSpecError: one line naming the table, the key and the problem, with a
            did-you-mean for a misspelt key.
    """
    specs: dict[str, ServiceSpec] = {}
    for name, service_table in table.items():
        where = f"{origin} [tool.ws_resilience.services.{name}]"
        if not isinstance(service_table, Mapping):
            raise ServiceSpecError(
                f"{where}: expected a table of service keys, got {redact(repr(service_table))}"
            )
        kwargs = _table_to_kwargs(where, service_table)
        try:
            specs[name] = ServiceSpec(name, **kwargs)
        except ServiceSpecError as err:
            raise ServiceSpecError(f"{where}: {err.message}") from None
    return specs
