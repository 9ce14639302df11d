"""Room for a storm's sockets: the process's open-file limit, raised when a storm needs it.

Every connection a storm holds is one file descriptor of this process (two when the
server runs in it too, as the embedded server does). Linux distributions still ship a
soft limit of 1,024 open files (``ulimit -n``), under a hard limit of tens of
thousands: a 5,000-connection storm would fail with ``EMFILE`` on its 1,000th socket,
counted as errors that measure the machine's configuration, not the server.

So before it opens anything, a storm asks `ensure_fd_limit` for the descriptors it
will hold: the soft limit is raised (up to the hard limit, which an unprivileged process
may do) when it is too low. When even the hard limit cannot hold the client's own
sockets, the storm fails at once with one `WsConfigError` that says how many it needs,
what the limit is, and how to fix it, instead of a thousand ``EMFILE`` errors. The
server's half of an in-process server's sockets is asked for too, but only up to the
hard limit: whether the server lives in this process is not the storm's to know.

Pure: the ``resource`` module and ``/proc/self/fd`` (``/dev/fd`` elsewhere), no I/O on
sockets. Without ``resource`` (Windows) there is no such limit to raise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pytest_ws_resilience.errors import WsConfigError

__all__ = ["FD_HEADROOM", "FdLimit", "ensure_fd_limit", "fd_limit", "open_fd_count"]

#: Descriptors kept free besides the storm's sockets: log files, pipes, the event
#: loop's selector and self-pipe, a server's listening socket, what pytest holds.
FD_HEADROOM = 64
_FD_DIRS = ("/proc/self/fd", "/dev/fd")


@dataclass(frozen=True)
class FdLimit:
    """The open-file limits of this process (None: no such limit on this platform)."""

    soft: int | None
    hard: int | None
    #: The soft limit before `ensure_fd_limit` raised it (equal to ``soft`` otherwise).
    was: int | None = None

    @property
    def raised(self) -> bool:
        return self.was is not None and self.soft is not None and self.soft > self.was


def _unlimited(value: int) -> int | None:
    import resource

    return None if value == resource.RLIM_INFINITY else value


def fd_limit() -> FdLimit:
    """The current soft and hard limits (None where unlimited or unknown)."""
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_NOFILE
        return FdLimit(None, None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return FdLimit(_unlimited(soft), _unlimited(hard), _unlimited(soft))


def open_fd_count() -> int | None:
    """Descriptors this process has open now; None when the platform does not say."""
    for directory in _FD_DIRS:
        try:
            return len(os.listdir(directory)) - 1  # the listing's own descriptor
        except OSError:
            continue
    return None


def ensure_fd_limit(connections: int, *, in_process_server: bool = True) -> FdLimit:
    """Make room for ``connections`` more sockets of this process; return the limits.

    Needed: the descriptors open now, plus one per connection (two with
    ``in_process_server``: the server's end too), plus `FD_HEADROOM`. A soft limit
    below that is raised, up to the hard limit.

    Raises:
        WsConfigError: even the hard limit cannot hold the client's own sockets (one
            per connection, plus what is open and the headroom).
    """
    limit = fd_limit()
    if limit.soft is None:
        return limit
    base = (open_fd_count() or 0) + FD_HEADROOM
    client_only = base + connections
    wanted = client_only + (connections if in_process_server else 0)
    if limit.soft >= wanted:
        return limit
    hard = limit.hard
    if hard is not None and hard < client_only:
        raise WsConfigError(
            f"a storm of {connections} connections needs {client_only} open files "
            f"(already open: {base - FD_HEADROOM}, headroom {FD_HEADROOM}) but the hard "
            f"limit is {hard}: raise it (`ulimit -Hn`, limits.conf, or the container's "
            f"--ulimit nofile=) or storm with fewer connections"
        )
    target = wanted if hard is None else min(wanted, hard)
    import resource

    try:
        ceiling = resource.RLIM_INFINITY if hard is None else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, ceiling))
    except (ValueError, OSError) as exc:
        raise WsConfigError(
            f"a storm of {connections} connections needs {client_only} open files; "
            f"raising the soft limit from {limit.soft} to {target} failed: {exc}"
        ) from None
    return FdLimit(target, hard, limit.soft)
