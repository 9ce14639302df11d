"""When an isolation check checked nothing: no client watched, no frame scanned, or
nothing to look for in the frames.

Pure, no I/O. The one rule behind the "nothing was checked" finding of the isolation
detector, used by the test's guard (`IsolationGuard.nothing_checked`) and by the
``websocket_security`` marker's checks (`plugin/markers.py`); what a finding leads to
(a warning, or a failure when strict) is `pytest_ws_resilience.vacuous`'s rule.
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_ws_resilience.vacuous import NothingChecked

__all__ = ["ClientsSeen", "isolation_nothing_checked"]

#: ``() -> (clients, connected)``: the clients a test used through the plugin and how
#: many of them had a connection accepted (the plugin's `TestWatch` knows).
ClientsSeen = Callable[[], tuple[int, int]]


def isolation_nothing_checked(
    *, checks: int, clients: int, connected: int, nothing_to_look_for: str | None
) -> NothingChecked | None:
    """The "nothing was checked" finding of an isolation detector, or None.

    Vacuous: no client watched (a `WsClient` made by hand is not), no frame scanned,
    or nothing to look for in the frames (`IsolationDetector.nothing_to_look_for`).
    Exempt: every client the test tried was refused at the handshake (an
    authentication test: no frame could come, by design, and the plugin saw it try).

    Args:
        checks: frames the detector scanned.
        clients: clients the test used through the plugin's fixtures.
        connected: how many of them had a connection accepted.
        nothing_to_look_for: the detector's reason it holds no usable marker, if any.
    """
    if clients and not connected:
        return None
    if not clients:
        why = (
            "the test opened no connection through ws_client, ws_client_factory, ws_pool "
            "or ws_storm (a WsClient made by hand is not watched)"
        )
    elif not checks:
        why = f"its {connected} connection(s) received no frame"
    elif nothing_to_look_for is not None:
        why = f"{checks} frame(s) scanned, but {nothing_to_look_for}"
    else:
        return None
    return NothingChecked("isolation", "the isolation detector", why)
