"""The bounded record of every frame a client received.

Pure data, no I/O: the client's receiver appends every frame (JSON or not, text or
binary), waits scan (what they look for is
`pytest_ws_resilience.client.matching`). The log is a ring buffer so a client that
receives 10,000+ messages keeps a flat memory footprint; ``total`` and ``dropped`` say
how much went through and how much was evicted.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import Any

from pytest_ws_resilience.peer_json import decode_or

__all__ = ["EventLog", "LogRecord"]


@dataclass(slots=True)
class LogRecord:
    """One received frame: read-only by convention (not frozen: one is made for every
    frame, and a frozen dataclass pays a call of ``object.__setattr__`` per field).

    Attributes:
        index: position in the stream since the log was created; monotonic, never reused
            (not even after `EventLog.clear`), so it works as a cursor.
        received_at: ``time.monotonic()`` at receipt, for intervals.
        wall_time: ``time.time()`` at receipt, for reports.
        raw: the frame as received (text or bytes).
        data: the parsed JSON value, or None when the frame is not JSON.
    """

    index: int
    received_at: float
    wall_time: float
    raw: str | bytes
    data: Any

    @property
    def frame(self) -> Any:
        """The frame as predicates and key functions see it: the parsed JSON, else the
        raw text (a text frame that is not JSON), else the raw bytes."""
        data = self.data
        return self.raw if data is None else data

    @property
    def is_text(self) -> bool:
        """True for a text frame (JSON or not), False for a binary one."""
        return isinstance(self.raw, str)


class EventLog:
    """A ring buffer of `LogRecord`, oldest first.

    Args:
        maxlen: records kept; older ones are evicted (and counted in ``dropped``).
    """

    def __init__(self, maxlen: int = 1000) -> None:
        if maxlen < 1:
            raise ValueError(f"EventLog maxlen must be >= 1, got {maxlen}")
        self.maxlen = maxlen
        self._records: deque[LogRecord] = deque(maxlen=maxlen)
        self._total = 0

    def __repr__(self) -> str:
        return f"EventLog(len={len(self)}, maxlen={self.maxlen}, total={self.total})"

    def __len__(self) -> int:
        return len(self._records)

    def append(self, raw: str | bytes, received_at: float | None = None) -> LogRecord:
        """Record a frame, parsing its JSON once; returns the new record."""
        record = LogRecord(
            index=self._total,
            received_at=time.monotonic() if received_at is None else received_at,
            wall_time=time.time(),
            raw=raw,
            data=decode_or(raw, None),
        )
        self._records.append(record)
        self._total += 1
        return record

    @property
    def records(self) -> list[LogRecord]:
        return list(self._records)

    @property
    def events(self) -> list[Any]:
        """Parsed JSON of the retained frames, in order (non-JSON frames skipped)."""
        return [r.data for r in self._records if r.data is not None]

    @property
    def frames(self) -> list[Any]:
        """Every retained frame, in order, as `LogRecord.frame` shows it: parsed JSON,
        else the text, else the bytes (so a text protocol's frames are all here)."""
        return [r.frame for r in self._records]

    @property
    def total(self) -> int:
        """Frames ever appended."""
        return self._total

    @property
    def dropped(self) -> int:
        """Frames no longer retained (evicted by the ring, or cleared)."""
        return self._total - len(self._records)

    @property
    def last_index(self) -> int:
        """Index of the newest frame ever appended; -1 when none was."""
        return self._total - 1

    def since(self, index: int) -> list[LogRecord]:
        """Retained records whose index is >= ``index``, oldest first."""
        count = min(self._total - max(index, 0), len(self._records))
        if count <= 0:
            return []
        # Walk from the newer end: waits usually ask for the last few records.
        newest_first = list(islice(reversed(self._records), count))
        newest_first.reverse()
        return newest_first

    def clear(self) -> None:
        """Forget retained records; indexes keep counting up."""
        self._records.clear()
