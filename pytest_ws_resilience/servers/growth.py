"""What a server holds (`ResourceSample`) and how much of it a run of connect/disconnect
cycles left behind (`ServerGrowth`): the pure part of measuring a server's growth.

Plain data and arithmetic, no I/O: `servers.resources` takes the samples (psutil, the
Docker stats API), `load.storm` takes one before and one after its cycles, and
`load.thresholds.growth_breaches` judges the growth per 1,000 cycles against the
limits of ``StormResult.assert_server_growth``. Scaling to 1,000 cycles makes runs of
different lengths comparable: a server that keeps one file descriptor per closed
connection grows by about 1,000 fds per 1,000 cycles, whatever ``n`` the test chose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "RESOURCE_METRICS",
    "ResourceSample",
    "ServerGrowth",
    "still_falling",
]

#: The figures a growth is computed for, as ``assert_server_growth`` names them.
RESOURCE_METRICS: tuple[str, ...] = ("rss_mib", "fds", "threads", "sockets")
#: Cycles a growth is scaled to.
PER_CYCLES = 1000
_MIB = 1024 * 1024
_LABELS = {"rss_mib": "RSS", "fds": "fds", "threads": "threads", "sockets": "TCP sockets"}


@dataclass(frozen=True)
class ResourceSample:
    """What a server held at one moment, summed over its processes.

    A figure is None when it could not be read (``note`` says why), never a guess.

    Attributes:
        rss_bytes: resident memory, the sum over the server's processes (forked
            workers share pages, so the sum is an upper bound; its growth is what
            counts).
        fds: open file descriptors.
        threads: threads (for a container read from the Docker stats API only: its
            cgroup's task count, which counts threads).
        sockets: TCP sockets the processes hold (listening ones included), each
            counted once when several processes share it.
        processes: how many processes were read (the server and its children).
        source: what was read, e.g. ``"process tree of pid 1234"`` or
            ``"container 3f2a1b0c9d8e (host pid 5678)"``.
        note: what could not be read and why ("" when everything was).
        container_memory_bytes: a container's memory usage by the Docker stats API
            (its cgroup's usage less inactive page cache, as ``docker stats`` shows).
        container_pids: a container's task count by the Docker stats API.
        taken_at: when, in `time.monotonic` seconds.
    """

    rss_bytes: int | None
    fds: int | None
    threads: int | None
    sockets: int | None
    processes: int
    source: str
    note: str = ""
    container_memory_bytes: int | None = None
    container_pids: int | None = None
    taken_at: float = 0.0

    @property
    def rss_mib(self) -> float | None:
        return None if self.rss_bytes is None else self.rss_bytes / _MIB

    def value(self, metric: str) -> float | None:
        """The figure ``metric`` names (one of `RESOURCE_METRICS`)."""
        if metric not in RESOURCE_METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(RESOURCE_METRICS)}")
        if metric == "rss_mib":
            return self.rss_mib
        found: int | None = getattr(self, metric)
        return None if found is None else float(found)

    def with_note(self, note: str) -> ResourceSample:
        """This sample with ``note`` added to its note."""
        return replace(self, note="; ".join(n for n in (self.note, note) if n))

    def describe(self) -> str:
        """One line: ``RSS 41.3 MiB, 12 fds, 3 threads, 2 TCP sockets (process tree
        of pid 1234, 1 process)``; what is unknown says so."""
        parts = []
        for metric in RESOURCE_METRICS:
            value = self.value(metric)
            label = _LABELS[metric]
            if value is None:
                parts.append(f"{label} unknown")
            elif metric == "rss_mib":
                parts.append(f"RSS {value:.1f} MiB")
            else:
                parts.append(f"{value:g} {label}")
        plural = "es" if self.processes != 1 else ""
        where = f"{self.source}, {self.processes} process{plural}"
        note = f"; {self.note}" if self.note else ""
        return f"{', '.join(parts)} ({where}{note})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rss_bytes": self.rss_bytes,
            "fds": self.fds,
            "threads": self.threads,
            "sockets": self.sockets,
            "processes": self.processes,
            "source": self.source,
            "note": self.note,
            "container_memory_bytes": self.container_memory_bytes,
            "container_pids": self.container_pids,
        }


def still_falling(previous: ResourceSample, current: ResourceSample) -> bool:
    """True while the server is still letting go of closed connections: fewer fds or
    TCP sockets than in the previous sample (a socket closes some time after the
    client's close returned; a server's cleanup may run later still)."""
    for metric in ("fds", "sockets"):
        before, now = getattr(previous, metric), getattr(current, metric)
        if before is not None and now is not None and now < before:
            return True
    return False


def _signed(value: float, metric: str) -> str:
    if metric == "rss_mib":
        return f"{value:+.1f} MiB"
    return f"{value:+.0f}" if value == int(value) else f"{value:+.1f}"


@dataclass(frozen=True)
class ServerGrowth:
    """How much a server grew over ``cycles`` connect/disconnect cycles.

    The growth of a figure is ``after - before``; `per_thousand` scales it to 1,000
    cycles. A figure unknown in either sample has no growth (None).
    """

    before: ResourceSample
    after: ResourceSample
    cycles: int

    def __post_init__(self) -> None:
        if self.cycles < 1:
            raise ValueError(f"a growth needs at least one cycle, got {self.cycles}")

    def change(self, metric: str) -> float | None:
        """``after - before`` of ``metric`` (MiB for ``rss_mib``); None when unknown."""
        before, after = self.before.value(metric), self.after.value(metric)
        if before is None or after is None:
            return None
        return after - before

    def per_thousand(self, metric: str) -> float | None:
        """`change` scaled to 1,000 cycles."""
        change = self.change(metric)
        return None if change is None else change * PER_CYCLES / self.cycles

    @property
    def per_1000(self) -> dict[str, float | None]:
        """Every metric's growth per 1,000 cycles, by name."""
        return {metric: self.per_thousand(metric) for metric in RESOURCE_METRICS}

    def describe(self) -> str:
        """One line: ``server growth per 1,000 cycles: RSS +62.4 MiB, fds +1000,
        threads +0, TCP sockets +0 (over 200 cycles; fds 12 -> 212)``."""
        parts = []
        for metric in RESOURCE_METRICS:
            value = self.per_thousand(metric)
            label = _LABELS[metric]
            parts.append(
                f"{label} unknown" if value is None else f"{label} {_signed(value, metric)}"
            )
        counts = [
            f"{_LABELS[m]} {self.before.value(m):g} -> {self.after.value(m):g}"
            for m in ("fds", "sockets", "threads")
            if self.before.value(m) is not None and self.after.value(m) is not None
        ]
        rss = self.before.rss_mib, self.after.rss_mib
        if rss[0] is not None and rss[1] is not None:
            counts.insert(0, f"RSS {rss[0]:.1f} -> {rss[1]:.1f} MiB")
        detail = "; ".join([f"over {self.cycles} cycles", *counts])
        notes = {n for n in (self.before.note, self.after.note) if n}
        noted = f"; {'; '.join(sorted(notes))}" if notes else ""
        return (
            f"server growth per 1,000 cycles: {', '.join(parts)} "
            f"({detail}; {self.after.source}{noted})"
        )

    def short(self) -> str:
        """The known figures per 1,000 cycles, compactly: ``fds +1000, RSS +62.4 MiB``."""
        known = [
            f"{_LABELS[m]} {_signed(v, m)}"
            for m in RESOURCE_METRICS
            if (v := self.per_thousand(m)) is not None
        ]
        return ", ".join(known) or "nothing readable"

    def as_dict(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "per_1000": self.per_1000,
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
        }
