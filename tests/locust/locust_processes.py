"""What the Locust tests share: the one check that no Locust process is left behind, and
the xdist group that keeps them off each other.

The check looks at every process on the machine that runs this checkout's locustfile
(an orphan of a finished run is no longer anyone's child), so two of these tests
running at once on two xdist workers would each see the other's live processes: every
test that starts Locust processes carries `LOCUST_GROUP` and runs on one worker, one
after the other (``--dist loadgroup``).
"""

from __future__ import annotations

import psutil
import pytest

from pytest_ws_resilience.locust.distributed import locustfile_path

__all__ = ["LOCUST_GROUP", "left_behind"]

LOCUST_GROUP = pytest.mark.xdist_group("locust_processes")


def left_behind() -> list[str]:
    """Locust processes of this checkout still running anywhere on the machine."""
    ours = locustfile_path()
    return [
        f"{p.pid}: {' '.join(p.info['cmdline'] or ())}"
        for p in psutil.process_iter(["cmdline"])
        if ours in " ".join(p.info["cmdline"] or ())
    ]
