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

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest

from pytest_ws_resilience.plugin.watch import TestWatch

__all__ = ["close_early", "nothing_uses_after"]

#: The name through which a fixture or test reaches any fixture, and adds finalizers.
_REQUEST = "request"


def nothing_uses_after(
    latest_first: Iterable[tuple[str, Sequence[str]]], fixture: str, test_args: Sequence[str]
) -> bool:
    """Whether nothing of a test can use ``fixture``'s value once the body has ended.

    Args:
        latest_first: the test's fixtures in the reverse of the order pytest set them
            up, each with its argument names (read only back to ``fixture``: usually
            the last one set up).
        fixture: the client fixture's name.
        test_args: the test function's argument names.
    """
    if _REQUEST in test_args:
        return False
    for name, args in latest_first:
        if name == fixture:
            return True
        if fixture in args or _REQUEST in args:
            return False
    return False  # never set up


def close_early(item: pytest.Item, watch: TestWatch) -> None:
    """The body of ``item`` passed: start closing the clients of its client fixtures
    (offered in ``watch``) that nothing can use any more; the others close at teardown.
    The offers are taken either way: the watch, and so the item, holds no factory after
    (the watch itself is let go of at the test's record, whatever the body did)."""
    offers, watch.closing_offers = watch.closing_offers, []
    if not offers:
        return
    defs = getattr(getattr(item, "_request", None), "_fixture_defs", None)
    # The test function's own argument names, as pytest read them at collection.
    test_args = getattr(getattr(item, "_fixtureinfo", None), "argnames", None)
    if not isinstance(defs, dict) or not isinstance(test_args, tuple):
        return  # a pytest that keeps these otherwise: close at teardown, as always
    for name, factory in offers:
        if nothing_uses_after(_latest_first(defs), name, test_args):
            factory.start_closing()


def _latest_first(defs: dict[str, Any]) -> Iterator[tuple[str, Sequence[str]]]:
    """The function-scoped fixtures of a test, latest set up first, with their argument
    names: pytest's request of the test (``defs``) records each fixture when its setup
    has finished (a fixture set up inside another's comes first), asked for by name or
    by ``getfixturevalue``. A wider-scoped fixture cannot use a function-scoped one
    (pytest refuses it), so only function-scoped ones count.
    """
    for name, fixturedef in reversed(defs.items()):
        if getattr(fixturedef, "scope", "function") == "function":
            yield name, getattr(fixturedef, "argnames", (_REQUEST,))
