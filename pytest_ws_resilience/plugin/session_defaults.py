"""The session's own settings, token factory and server, and when a client fixture may
use them without asking pytest.

``ws_client`` connects as ``ws_user`` to ``ws_server`` with ``ws_settings``, and a
conftest that overrides one of them (or ``ws_tokens``, ``ws_user_factory``) must be
followed. Asking pytest is what follows an override, but pytest 9 resolves every fixture
a fixture takes on every test, cached or not: five names more in each test's closure
cost a ``ws_client`` test about a tenth of its time (``benchmarks/suite_overhead.py``).
So the client fixtures take none of them (only pytest-asyncio's runner, for the loop)
and decide, for the test they serve, once per module (`own_inputs`):

- no override visible to the test: the session's own values, kept here, the same
  objects the public fixtures return (``ws_client.user`` is ``ws_user`` when the test
  also takes ``ws_user``);
- an override: every input through pytest's request of the test (`fixture_value`),
  as a fixture argument would be.

This module imports no other glue than the shared state (`pytest_ws_resilience.plugin.
stash`); what it delegates to (tokens, servers) is imported at first use.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.errors import AsgiAppStartupError, ServiceError, WsTimeoutError
from pytest_ws_resilience.plugin.stash import DEFAULTS_KEY, SERVER_URLS_KEY, SETTINGS_KEY

if TYPE_CHECKING:
    from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
    from pytest_ws_resilience.servers.under_test import ServerUnderTest

__all__ = [
    "CLIENT_INPUTS",
    "ClientInputs",
    "SessionDefaults",
    "client_inputs",
    "client_user",
    "close_session_defaults",
    "fixture_value",
    "fresh_user",
    "own_inputs",
    "session_defaults",
]

#: The fixtures a client fixture's server, settings and users come from; an override
#: of any of them, visible to a test, sends that test's client fixtures through pytest.
CLIENT_INPUTS = ("ws_server", "ws_settings", "ws_tokens", "ws_user_factory", "ws_user")
# On a module or class node: whether its tests see only the plugin's `CLIENT_INPUTS`.
_OWN_KEY = pytest.StashKey[bool]()


class SessionDefaults:
    """The values of the plugin's own ``ws_settings``, ``ws_tokens`` and ``ws_server``,
    made once per process, at first use. The server stops at the end of the session
    (`close`), after every fixture's teardown.

    ``ws_server`` makes one of its own for settings or tokens a conftest overrode.
    """

    def __init__(
        self,
        config: pytest.Config,
        *,
        settings: WsSettings | None = None,
        tokens: TokenFactory | None = None,
    ) -> None:
        self._config = config
        if settings is None:
            settings = config.stash.get(SETTINGS_KEY, None) or WsSettings()
        self.settings = settings
        self._tokens = tokens
        self._server: ServerUnderTest | None = None
        self._failure: BaseException | None = None
        self._failure_tb: TracebackType | None = None

    def __repr__(self) -> str:
        return f"SessionDefaults(server={self._server!r})"

    @property
    def tokens(self) -> TokenFactory:
        """The `TokenFactory` for the settings: its tokens are accepted by the server."""
        if self._tokens is None:
            from pytest_ws_resilience.servers.under_test import token_factory_for

            self._tokens = token_factory_for(self.settings)
        return self._tokens

    def user(self) -> TestUser:
        """A fresh user, as the plugin's ``ws_user`` makes one."""
        return self.tokens.user()

    def server(self, session: pytest.Session) -> ServerUnderTest:
        """The server under test, opened at the first call. An app or command that fails
        to start fails the calling test with its output and stops the session (the
        other tests would only repeat it); a failure is raised again to every later
        caller, as pytest does for a session fixture, without a second attempt."""
        if self._server is not None:
            return self._server
        if self._failure is not None:  # its first traceback, not one grown by each raise
            raise self._failure.with_traceback(self._failure_tb)
        from pytest_ws_resilience.servers.under_test import open_server_under_test

        settings = self.settings
        failure: str | None = None
        try:
            self._server = open_server_under_test(settings, self.tokens)
        except (AsgiAppStartupError, WsTimeoutError, ServiceError) as err:
            if settings.server.app is None and settings.server.command is None:
                self._failure, self._failure_tb = err, err.__traceback__
                raise
            failure = str(err)
        if failure is not None:  # outside the except block: no chained traceback to repeat
            what = "ASGI app" if settings.server.app is not None else "server command"
            session.shouldfail = (
                f"the {what} under test failed to start; session stopped (see the first error)"
            )
            try:
                pytest.fail(failure, pytrace=False)
            except BaseException as err:  # pytest's Failed: kept for the later callers
                self._failure, self._failure_tb = err, err.__traceback__
                raise
        assert self._server is not None
        self._config.stash.setdefault(SERVER_URLS_KEY, []).append(self._server.url)
        return self._server

    def close(self) -> None:
        """Stop the server if it was opened (bounded by the close timeout); idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close(timeout=self.settings.close_timeout.value)


def session_defaults(config: pytest.Config) -> SessionDefaults:
    """This process's `SessionDefaults`, made at the first call."""
    defaults = config.stash.get(DEFAULTS_KEY, None)
    if defaults is None:
        defaults = config.stash[DEFAULTS_KEY] = SessionDefaults(config)
    return defaults


def close_session_defaults(config: pytest.Config) -> None:
    """At the end of the session: stop the session's server, if one was opened."""
    defaults = config.stash.get(DEFAULTS_KEY, None)
    if defaults is not None:
        defaults.close()


class ClientInputs(NamedTuple):
    """What a client fixture connects with: the server, the settings, and where its
    users come from."""

    server: ServerUnderTest
    settings: WsSettings
    #: The session's defaults when no override is visible to the test; None: through
    #: pytest.
    defaults: SessionDefaults | None


def client_inputs(item: pytest.Item) -> ClientInputs:
    """The server and settings of a client fixture (``ws_client``, ``ws_client_factory``)
    serving ``item``: the session's own, or, when the test sees an override of any of
    `CLIENT_INPUTS`, the fixtures' values."""
    if own_inputs(item):
        defaults = session_defaults(item.config)
        return ClientInputs(defaults.server(item.session), defaults.settings, defaults)
    server: ServerUnderTest = fixture_value(item, "ws_server")
    settings: WsSettings = fixture_value(item, "ws_settings")
    return ClientInputs(server, settings, None)


def client_user(item: pytest.Item, inputs: ClientInputs) -> TestUser:
    """``ws_user``'s value: the fixture's when the test takes it too or overrides it (the
    same user then), else a fresh one, as the plugin's ``ws_user`` makes it."""
    if inputs.defaults is None or "ws_user" in getattr(item, "fixturenames", ()):
        user: TestUser = fixture_value(item, "ws_user")
        return user
    return inputs.defaults.user()


def fresh_user(item: pytest.Item, inputs: ClientInputs) -> TestUser:
    """A fresh user: ``ws_user_factory()``, from the session's tokens when the factory
    is the plugin's own."""
    if inputs.defaults is not None:
        return inputs.defaults.user()
    factory: Callable[[], TestUser] = fixture_value(item, "ws_user_factory")
    return factory()


def fixture_value(item: pytest.Item, name: str) -> Any:
    """Fixture ``name``'s value for ``item``, as a fixture argument would get it: from
    pytest's request of the test (pytest's ``_request`` of the item, which
    pytest-asyncio's tests use too). Set up now if the test had not yet, it is torn
    down after the client fixture that asked (pytest finishes in reverse order).

    Raises:
        RuntimeError: an item pytest made no fixture request for (not a test function
            or a doctest): one line naming the test and the fixture.
    """
    request: pytest.FixtureRequest | None = getattr(item, "_request", None)
    if request is None:
        raise RuntimeError(
            f"{item.nodeid}: cannot get fixture {name} for a {type(item).__name__} "
            "(pytest made no fixture request for it)"
        )
    return request.getfixturevalue(name)


def own_inputs(item: pytest.Item) -> bool:
    """Whether every one of `CLIENT_INPUTS` visible to the test is the plugin's.

    Found once per module (or class), the nodes fixtures are defined on, and kept
    there. When pytest cannot say which fixtures a test sees, the answer is no: the
    inputs then come through pytest, which is slower, not wrong.
    """
    holder = item.parent or item
    own = holder.stash.get(_OWN_KEY, None)
    if own is None:
        own = holder.stash[_OWN_KEY] = _all_ours(item)
    return own


def _all_ours(item: pytest.Item) -> bool:
    manager: Any = getattr(item.session, "_fixturemanager", None)
    if manager is None:
        return False
    for name in CLIENT_INPUTS:
        try:
            visible = manager.getfixturedefs(name, item)
        except Exception:  # pytest's private API changed: ask pytest for every input
            return False
        if not visible or not _ours(visible[-1]):
            return False
    return True


def _ours(fixturedef: Any) -> bool:
    module = getattr(getattr(fixturedef, "func", None), "__module__", "")
    return isinstance(module, str) and module.startswith("pytest_ws_resilience.")
