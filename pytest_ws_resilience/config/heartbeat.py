"""Whether the clients' heartbeat beats the infrastructure's idle timeout.

Pure: two settings in, one line out. A load balancer in front of a WebSocket server
(Cloud Run, a GCP or AWS load balancer) drops a connection that carried no byte either
way for its idle timeout; a client's keepalive ping, and the server's pong, are bytes,
so a heartbeat shorter than the idle timeout keeps a quiet connection alive. The
classic failure, "the connection drops every 2 minutes", is a heartbeat slower than the
timeout, or none. The plugin checks the two profile keys (``idle_timeout``,
``heartbeat_interval``) once at start-up and warns (`WsHeartbeatWarning`) with this
module's line; the same check is written here once.

The margin: the heartbeat must be at most `HEARTBEAT_MARGIN` short of the idle timeout
(at most 80% of it). A ping is due ``heartbeat_interval`` after the previous one, but
it leaves late when the client's loop is busy, and the load balancer's own clock is not
the client's: a heartbeat equal to the timeout loses that race about half the time.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["HEARTBEAT_MARGIN", "heartbeat_problem", "longest_heartbeat"]

#: The heartbeat must leave this fraction of the idle timeout to spare.
HEARTBEAT_MARGIN: Final = 0.2


def longest_heartbeat(idle_timeout: float) -> float:
    """The longest heartbeat interval that beats ``idle_timeout`` with the margin, s."""
    return idle_timeout * (1.0 - HEARTBEAT_MARGIN)


def _seconds(value: float) -> str:
    return f"{value:g} s"


def heartbeat_problem(
    idle_timeout: float | None, heartbeat_interval: float | Literal[False] | None
) -> str | None:
    """One line saying why the heartbeat would not beat the idle timeout, or None.

    Nothing to say when the idle timeout is unknown (None). Otherwise: no heartbeat
    set (the clients keep websockets' 20 s default, which nobody aligned), heartbeats
    switched off (``false``), or an interval above `longest_heartbeat`.
    """
    if idle_timeout is None:
        return None
    idle = f"idle_timeout = {_seconds(idle_timeout)}"
    fix = f"set heartbeat_interval to at most {_seconds(longest_heartbeat(idle_timeout))}"
    margin = f"(idle_timeout minus {HEARTBEAT_MARGIN:.0%})"
    if heartbeat_interval is None:
        return (
            f"{idle} is set but heartbeat_interval is not: clients ping at websockets' "
            f"default, which nobody checked against it; {fix} {margin}"
        )
    if heartbeat_interval is False:
        return (
            f"heartbeat_interval = false (no keepalive pings) with {idle}: a connection "
            f"idle that long is dropped by the infrastructure; {fix} {margin}"
        )
    if heartbeat_interval > longest_heartbeat(idle_timeout):
        return (
            f"heartbeat_interval = {_seconds(heartbeat_interval)} does not beat {idle}: "
            f"a connection idle between two pings is dropped; {fix} {margin}"
        )
    return None
