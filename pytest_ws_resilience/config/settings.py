"""Resolved settings for one run: environment, URL, timeouts (with sources), auth.

`WsSettings` is plain data. It is built from the command line, ``WS_ENV``, pytest ini
and ``[tool.ws_resilience]`` by `pytest_ws_resilience.config.loading.load_settings`, and can be
built directly (``WsSettings()``) when the library is used outside pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pytest_ws_resilience.config.backoff import Backoff
from pytest_ws_resilience.config.timeouts import Source, TimeoutValue
from pytest_ws_resilience.redaction import secret_repr

if TYPE_CHECKING:  # the services package imports config, which imports this module
    from pytest_ws_resilience.servers.spec import ServiceSpec

__all__ = ["AUTH_METHODS", "DEFAULT_AUTH_CHAIN", "DEFAULT_MAX_MESSAGE_SIZE", "WsSettings"]

#: Every auth method a client knows, in the default fallback order, plus "none".
AUTH_METHODS = ("subprotocol", "query", "header", "cookie", "none")
DEFAULT_AUTH_CHAIN = ("subprotocol", "query", "header", "cookie")
DEFAULT_MAX_MESSAGE_SIZE = 5 * 1024 * 1024


@dataclass(frozen=True)
class WsSettings:
    """Everything a client, a fixture or the reference server needs to know.

    Secrets (``jwt_secret``, ``jwt_private_key``) are held here after being read from
    the environment variables named in the config; they are redacted in ``repr``.
    """

    env: str = "local"
    env_source: str = Source.DEFAULT
    #: None means "the embedded reference server".
    url: str | None = None
    url_source: str = Source.DEFAULT
    path: str = "/"
    recv_timeout: TimeoutValue = TimeoutValue(10.0, "profile local")
    close_timeout: TimeoutValue = TimeoutValue(12.0, "profile local")
    connect_timeout: TimeoutValue = TimeoutValue(10.0, Source.DEFAULT)
    agent_timeout: TimeoutValue = TimeoutValue(None, Source.DEFAULT)
    connect_retries: int = 3
    backoff: Backoff = Backoff()
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Fallback order tried by clients with a token; empty: the default chain.
    auth_methods: tuple[str, ...] = ()
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_secret_env: str | None = None
    jwt_public_key: str | None = field(default=None, repr=False)
    jwt_public_key_env: str | None = None
    jwt_private_key: str | None = field(default=None, repr=False)
    jwt_private_key_env: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    auth_query_param: str = "token"
    auth_cookie: str = "access_token"
    auth_subprotocol: str = "jwt-auth"
    #: Services every test of the run needs (the env's ``services = [...]``), as if each
    #: test were marked ``ws_services(*services)``.
    services: tuple[str, ...] = ()
    #: The services defined in ``[tool.ws_resilience.services.NAME]``, by name.
    service_specs: Mapping[str, ServiceSpec] = field(default_factory=dict)
    #: Tests whose services cannot run fail instead of being skipped
    #: (``--ws-require-services`` / ``WS_REQUIRE_SERVICES``).
    require_services: bool = False
    #: A local command run as the server under test (``--ws-server-cmd``), ``{port}``
    #: filled with a free loopback port; ``url`` is then None until it runs.
    server_cmd: str | None = None
    #: The HS256 secret of the run when none is configured: drawn once by the run's
    #: first process and handed to xdist workers, so a service shared by the workers
    #: accepts every worker's tokens. Not a configured secret: ``auth_configured``
    #: ignores it.
    run_secret: str | None = field(default=None, repr=False)
    #: The ASGI app to serve with uvicorn (``module:attr`` or ``module:factory()``), when
    #: the server under test is the user's app (``--ws-app`` or the config key ``app``);
    #: ``url`` is then None until the app is served.
    app: str | None = None
    app_source: str = Source.DEFAULT
    #: Serve the app with ``python -m uvicorn`` in a subprocess instead of a thread.
    app_subprocess: bool = False
    #: Under xdist, serve one app for all workers (started and stopped by the controller)
    #: instead of one per worker.
    app_share: bool = False
    #: Directories put first on ``sys.path`` to import the app (pytest's rootdir and the
    #: invocation directory, as uvicorn's ``--app-dir``); set by the plugin.
    app_dirs: tuple[str, ...] = ()
    #: Unrecognised-but-tolerated extras for later features (kept for introspection).
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"WsSettings(env={self.env!r}, url={self.url!r}, "
            f"{f'app={self.app!r}, ' if self.app else ''}recv_timeout={self.recv_timeout}, "
            f"close_timeout={self.close_timeout}, connect_timeout={self.connect_timeout}, "
            f"agent_timeout={self.agent_timeout}, auth_methods={self.effective_auth_methods}, "
            f"jwt_secret={secret_repr(self.jwt_secret)}, "
            f"jwt_private_key={secret_repr(self.jwt_private_key)})"
        )

    @property
    def auth_configured(self) -> bool:
        """True when tokens the server will accept can be minted."""
        return self.jwt_secret is not None or self.jwt_private_key is not None

    @property
    def effective_auth_methods(self) -> tuple[str, ...]:
        """The fallback chain a client with a token walks: configured, else the default."""
        return self.auth_methods or DEFAULT_AUTH_CHAIN

    @property
    def timeouts(self) -> dict[str, TimeoutValue]:
        """The resolved timeouts by name, for headers and reports."""
        return {
            "recv_timeout": self.recv_timeout,
            "close_timeout": self.close_timeout,
            "connect_timeout": self.connect_timeout,
            "agent_timeout": self.agent_timeout,
        }

    def with_changes(self, **changes: Any) -> WsSettings:
        """A copy with some fields replaced (settings are immutable)."""
        return replace(self, **changes)
