"""Resolved settings of one run, grouped by concern.

`WsSettings` is plain, immutable data, resolved once by
`pytest_ws_resilience.config.loading.load_settings` (from the command line, ``WS_ENV``,
pytest ini and ``[tool.ws_resilience]``) or built directly (``WsSettings()``) when the
library is used outside pytest. Nothing patches it afterwards: every input a run has
(the run's secret, the directories an app imports from, the URL of an app the xdist
controller serves) goes into the loader.

Its parts:

- the client options, flat, because every client reads them: timeouts (always set,
  each with its source), retries, backoff, message size, auth method names and the
  greeting the server's first frame carries;
- `connection`: what every handshake the plugin makes carries besides a credential
  (headers, Origin, subprotocols, User-Agent, compression): clients, the pool, storms,
  chaos clients and readiness probes alike;
- `keys`: what signs the tokens and what the server checks in them;
- `server`: which server the run talks to (a URL, the user's ASGI app, a command, or
  the embedded reference server);
- `services`: the services the tests need and whether an unavailable one skips or fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.timeouts import Source, TimeoutValue
from pytest_ws_resilience.redaction import REDACTED, secret_repr

if TYPE_CHECKING:
    from pytest_ws_resilience.config.services import ServiceSpec

__all__ = [
    "APP_LIFESPANS",
    "AUTH_METHODS",
    "DEFAULT_AUTH_CHAIN",
    "DEFAULT_GREETING",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "ConnectionOptions",
    "KeySettings",
    "ServerChoice",
    "ServiceSettings",
    "WsSettings",
]

#: Every auth method a client knows, in the default fallback order, plus "none".
AUTH_METHODS = ("subprotocol", "query", "header", "cookie", "none")
DEFAULT_AUTH_CHAIN = ("subprotocol", "query", "header", "cookie")
DEFAULT_MAX_MESSAGE_SIZE = 5 * 1024 * 1024
#: The ``type`` of the first frame that announces ``connection_id`` and a negotiated
#: ``recv_timeout`` (SPEC section 3): the reference server's greeting, a common shape
#: for agent backends. A setting, so the client itself knows no protocol.
DEFAULT_GREETING = "connection_established"
#: How ``--ws-app`` runs the app's ASGI lifespan, as uvicorn's ``--lifespan``: "auto"
#: uses it when the app supports it (Django Channels' router does not).
APP_LIFESPANS = ("auto", "on", "off")
# Headers whose value is a credential: redacted wherever options are shown.
_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True)
class ConnectionOptions:
    """What every opening handshake carries besides the credential.

    The same for a test's clients, the pool, storms, chaos clients and the readiness
    probes, so a server that checks Origin or a header accepts all of them. Values that
    look like credentials (``Authorization``, ``Cookie``) are redacted in ``repr``.
    """

    #: Extra request headers, in order.
    headers: tuple[tuple[str, str], ...] = ()
    #: The ``Origin`` header (browsers send one; Origin-checking servers require it).
    origin: str | None = None
    #: Subprotocols offered besides the auth method's own.
    subprotocols: tuple[str, ...] = ()
    #: The ``User-Agent`` header; None: websockets' own.
    user_agent: str | None = None
    #: Offer permessage-deflate (websockets' default); False: no compression.
    compression: bool = True

    def __repr__(self) -> str:
        headers = tuple(
            (name, REDACTED if name.lower() in _SECRET_HEADERS else value)
            for name, value in self.headers
        )
        return (
            f"ConnectionOptions(headers={headers!r}, origin={self.origin!r}, "
            f"subprotocols={self.subprotocols!r}, user_agent={self.user_agent!r}, "
            f"compression={self.compression!r})"
        )

    def merged(
        self,
        *,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        user_agent: str | None = None,
        compression: bool | None = None,
    ) -> ConnectionOptions:
        """These options with a client's own on top: given headers are added (a header
        of the same name replaces the configured one), other values replace."""
        if (
            not headers
            and origin is None
            and subprotocols is None
            and user_agent is None
            and compression is None
        ):
            return self  # most clients: the configured options as they are
        merged_headers = self.headers
        if headers:
            items = tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)
            names = {name.lower() for name, _ in items}
            kept = tuple((n, v) for n, v in self.headers if n.lower() not in names)
            merged_headers = kept + items
        return ConnectionOptions(
            headers=merged_headers,
            origin=origin if origin is not None else self.origin,
            subprotocols=tuple(subprotocols) if subprotocols is not None else self.subprotocols,
            user_agent=user_agent if user_agent is not None else self.user_agent,
            compression=compression if compression is not None else self.compression,
        )


@dataclass(frozen=True)
class KeySettings:
    """What signs the tokens and what the server checks in them.

    ``secret`` (HS256) or ``private_key`` (RS256) are read from the environment variables
    the config names (``*_env``), never from a file; they are redacted in ``repr``.
    ``run_secret`` is the HS256 secret of a run where no key is configured: drawn once
    by the run's first process and handed to xdist workers and to the servers the
    plugin starts, so they accept every process's tokens.
    """

    secret: str | None = field(default=None, repr=False)
    secret_env: str | None = None
    public_key: str | None = field(default=None, repr=False)
    public_key_env: str | None = None
    private_key: str | None = field(default=None, repr=False)
    private_key_env: str | None = None
    audience: str | None = None
    issuer: str | None = None
    run_secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"KeySettings(secret={secret_repr(self.secret)}, secret_env={self.secret_env!r}, "
            f"private_key={secret_repr(self.private_key)}, "
            f"private_key_env={self.private_key_env!r}, audience={self.audience!r}, "
            f"issuer={self.issuer!r})"
        )

    @property
    def configured(self) -> bool:
        """True when the user configured a key the server under test checks (the run's
        own secret does not count: only servers the plugin started know it)."""
        return self.secret is not None or self.private_key is not None


@dataclass(frozen=True)
class ServerChoice:
    """Which server the run talks to: ``url``, else ``app``, else ``command``, else the
    embedded reference server."""

    #: An already running server; None while the plugin has still to start one.
    url: str | None = None
    url_source: str = Source.DEFAULT
    #: The WebSocket endpoint's path on an app or a command's server.
    path: str = "/"
    #: The ASGI app to serve with uvicorn (``module:attr`` or ``module:factory()``).
    app: str | None = None
    app_source: str = Source.DEFAULT
    #: Serve the app with ``python -m uvicorn`` in a subprocess instead of a thread.
    app_subprocess: bool = False
    #: Under xdist, one app served by the controller for all workers.
    app_share: bool = False
    #: Directories put first on ``sys.path`` to import the app (pytest's rootdir and the
    #: invocation directory, as uvicorn's ``--app-dir``).
    app_dirs: tuple[str, ...] = ()
    #: How uvicorn runs the app's lifespan: "auto", "on" or "off" (`APP_LIFESPANS`).
    app_lifespan: str = "auto"
    app_lifespan_source: str = Source.DEFAULT
    #: Environment variables the app needs (``app_env``, e.g. ``DJANGO_SETTINGS_MODULE``):
    #: set before the app is imported in-process, passed to a subprocess.
    app_env: tuple[tuple[str, str], ...] = ()
    #: A local command run as the server (``--ws-server-cmd``), ``{port}`` filled with a
    #: free loopback port.
    command: str | None = None

    def describe(self) -> str:
        """The server under test in one phrase, for headers, summaries and reports:
        its URL, ``app <path>``, ``command <cmd>`` or the embedded reference server."""
        if self.url is not None:
            return self.url
        if self.app is not None:
            return f"app {self.app}"
        if self.command is not None:
            return f"command {self.command}"
        return "embedded reference server"

    @property
    def kind(self) -> str:
        """``"url"``, ``"app"``, ``"command"`` or ``"embedded"``."""
        if self.url is not None:
            return "url"
        if self.app is not None:
            return "app"
        if self.command is not None:
            return "command"
        return "embedded"


@dataclass(frozen=True)
class ServiceSettings:
    """The services a run's tests need, and what happens when one cannot run."""

    #: Services every test needs (the env's ``services = [...]``), as if each test were
    #: marked ``ws_services(*needed)``.
    needed: tuple[str, ...] = ()
    #: The services of ``[tool.ws_resilience.services.NAME]``, by name.
    specs: Mapping[str, ServiceSpec] = field(default_factory=dict)
    #: Tests whose services cannot run fail instead of being skipped.
    required: bool = False
    #: Where ``required`` came from (``--ws-require-services``, ``WS_REQUIRE_SERVICES``),
    #: empty when not required.
    required_source: str = ""


@dataclass(frozen=True)
class WsSettings:
    """Everything a client, a fixture or a server the plugin starts needs to know.

    Every timeout but ``agent_timeout`` is always set; each carries its source. Secrets
    live in `keys` and are redacted in ``repr``.
    """

    env: str = "local"
    env_source: str = Source.DEFAULT
    #: Every env the configuration knows (built-in profiles and ``[envs.NAME]``
    #: tables): what ``ws_env`` markers may name. Empty: not known, not checked.
    known_envs: tuple[str, ...] = field(default=(), compare=False)
    recv_timeout: TimeoutValue = TimeoutValue(10.0, "profile local")
    close_timeout: TimeoutValue = TimeoutValue(12.0, "profile local")
    connect_timeout: TimeoutValue = TimeoutValue(10.0, Source.DEFAULT)
    #: How long an agent run may take; None: not configured (nothing is checked).
    agent_timeout: TimeoutValue | None = None
    connect_retries: int = 3
    backoff: Backoff = Backoff()
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Fallback order tried by clients with a token; empty: the default chain.
    #: ``("none",)``: the server is unauthenticated (no key needed, no token presented).
    auth_methods: tuple[str, ...] = ()
    auth_query_param: str = "token"
    auth_cookie: str = "access_token"
    auth_subprotocol: str = "jwt-auth"
    #: ``type`` of the server's greeting frame (``connection_id``, ``recv_timeout``);
    #: None: clients negotiate nothing.
    greeting: str | None = DEFAULT_GREETING
    #: Headers, Origin, subprotocols, User-Agent and compression of every handshake.
    connection: ConnectionOptions = ConnectionOptions()
    keys: KeySettings = KeySettings()
    server: ServerChoice = ServerChoice()
    services: ServiceSettings = ServiceSettings()
    #: The project's directory (pytest's rootdir): local commands (``--ws-server-cmd``,
    #: process services) run there. None outside pytest: the current directory.
    project_dir: str | None = None
    #: The idle timeout of the infrastructure in front of the server (a load balancer
    #: drops a connection that carried nothing for that long), seconds; None: unknown.
    idle_timeout: float | None = None
    #: The clients' keepalive ping interval, seconds (websockets' ``ping_interval``, with
    #: a ``ping_timeout`` as long); None: not set (websockets' 20 s); False: no pings.
    heartbeat_interval: float | Literal[False] | None = None

    def __repr__(self) -> str:
        where = self.server.url or (
            f"app {self.server.app}" if self.server.app else self.server.kind
        )
        return (
            f"WsSettings(env={self.env!r}, server={where!r}, recv_timeout={self.recv_timeout}, "
            f"close_timeout={self.close_timeout}, connect_timeout={self.connect_timeout}, "
            f"agent_timeout={self.agent_timeout}, auth_methods={self.effective_auth_methods}, "
            f"keys={self.keys!r})"
        )

    @property
    def unauthenticated(self) -> bool:
        """True when the server under test checks no credential (``auth_methods =
        ["none"]``): no key is needed or minted and clients present no token."""
        return self.auth_methods == ("none",)

    @property
    def effective_auth_methods(self) -> tuple[str, ...]:
        """The fallback chain a client with a token walks: configured, else the default."""
        return self.auth_methods or DEFAULT_AUTH_CHAIN

    @property
    def timeouts(self) -> dict[str, TimeoutValue | None]:
        """The resolved timeouts by name, for headers and reports (None: not set)."""
        return {
            "recv_timeout": self.recv_timeout,
            "close_timeout": self.close_timeout,
            "connect_timeout": self.connect_timeout,
            "agent_timeout": self.agent_timeout,
        }
