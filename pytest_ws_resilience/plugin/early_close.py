"""Closing a test's clients while pytest reports its body, when nothing can use them after.

A ``ws_client`` (or ``ws_client_factory``) test that passed has no more use for its
connections, but their fixture closes them at teardown, and the closing handshake
then waits for the server, which has gone idle since the test's last message: a round
trip added to every test, that a test written on raw websockets pays inside its body.
So when the body has passed, the session's call hook writes each such client's close
frame at once (`pytest_ws_resilience.client.closing.start_closing`); the server
answers while pytest makes and logs the body's report, and the fixture's teardown
(still bounded, still the one that closes) finds the handshake done or under way.

Only when nothing can use those clients after the body: pytest tears fixtures down in
the reverse of their setup order, so the fixtures that still run before the client
fixture's teardown are the ones set up after it (function-scoped: a wider scope cannot
use a test's fixture). None of those may take the client fixture, or ``request``
(which reaches any fixture, and adds finalizers); and the test
function may not take ``request`` either (its finalizers run before fixtures are torn
down). A test that failed keeps its clients open until teardown, as it left them.
Hook implementations that use a test's client after its body are not seen: a conftest
that sends on a client at teardown should request it from a fixture of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_ws_resilience.plugin.stash import EARLY_CLOSE_KEY

__all__ = ["close_early", "nothing_uses_after", "withdraw_early_close"]

#: The name through which a fixture or test reaches any fixture, and adds finalizers.
_REQUEST = "request"


def nothing_uses_after(
    setup_order: Sequence[tuple[str, Sequence[str]]], fixture: str, test_args: Sequence[str]
) -> bool:
    """Whether nothing of a test can use ``fixture``'s value once the body has ended.

    Args:
        setup_order: the test's fixtures as pytest set them up, each with its argument
            names.
        fixture: the client fixture's name (it must be in ``setup_order``).
        test_args: the test function's argument names.
    """
    if _REQUEST in test_args:
        return False
    names = [name for name, _ in setup_order]
    if fixture not in names:
        return False
    for _, args in setup_order[names.index(fixture) + 1 :]:
        if fixture in args or _REQUEST in args:
            return False
    return True


def close_early(item: pytest.Item) -> None:
    """The body of ``item`` passed: start closing the clients of its client fixtures
    that nothing can use any more (the others close at teardown)."""
    offers = item.stash.get(EARLY_CLOSE_KEY, None)
    if offers is None:
        return
    withdraw_early_close(item)
    setup_order = _setup_order(item)
    test_args = _test_args(item)
    if setup_order is None or test_args is None:
        return  # a pytest that keeps these otherwise: close at teardown, as always
    for name, factory in offers:
        if nothing_uses_after(setup_order, name, test_args):
            factory.start_closing()


def withdraw_early_close(item: pytest.Item) -> None:
    """Forget ``item``'s client fixtures (at its teardown, whatever became of the body):
    the item lives to the end of the session, its clients must not."""
    if EARLY_CLOSE_KEY in item.stash:
        del item.stash[EARLY_CLOSE_KEY]


def _setup_order(item: pytest.Item) -> list[tuple[str, Sequence[str]]] | None:
    """The function-scoped fixtures of ``item``, in the order they were set up, with
    their argument names.

    pytest's request of the test records each fixture when its setup has finished (a
    fixture set up inside another's comes first), asked for by name or by
    ``getfixturevalue``. A wider-scoped fixture cannot use a function-scoped one (pytest
    refuses it), so only function-scoped ones count.
    """
    defs = getattr(getattr(item, "_request", None), "_fixture_defs", None)
    if not isinstance(defs, dict):
        return None
    return [
        (name, getattr(d, "argnames", (_REQUEST,)))
        for name, d in defs.items()
        if getattr(d, "scope", "function") == "function"
    ]


def _test_args(item: pytest.Item) -> Sequence[str] | None:
    """The test function's own argument names (pytest's, read at collection)."""
    args = getattr(getattr(item, "_fixtureinfo", None), "argnames", None)
    return args if isinstance(args, tuple) else None
