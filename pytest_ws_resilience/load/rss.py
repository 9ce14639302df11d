"""The process's resident memory, for a storm's memory growth (no psutil needed).

Linux: the current resident set from ``/proc/self/statm``. Elsewhere the standard
library only offers the *peak* resident set (``resource.getrusage``), so a growth
computed from it is the growth of the peak; `rss_source` says which one is in use.
"""

from __future__ import annotations

import os
import sys

__all__ = ["current_rss_bytes", "rss_source"]

_STATM = "/proc/self/statm"


def rss_source() -> str:
    """``"statm"`` (current RSS), ``"getrusage"`` (peak RSS) or ``"none"``."""
    if os.path.exists(_STATM):
        return "statm"
    try:
        import resource  # noqa: F401  (not on Windows)
    except ImportError:
        return "none"
    return "getrusage"


def current_rss_bytes() -> int | None:
    """Resident memory of this process in bytes; None when it cannot be read."""
    try:
        with open(_STATM, "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS, in KiB elsewhere.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024
