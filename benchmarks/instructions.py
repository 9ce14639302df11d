"""The work a command does, counted by valgrind's cachegrind instead of timed.

On a shared machine, time measures the load as much as the code: over nine runs of
``benchmarks/suite_overhead.py`` the same raw suite took from 5.2 to 7.6 ms a test, and
raw ``websockets`` in a synchronous fixture, which counts 1.08x raw's work, timed 1.01x
to 1.32x raw. Cachegrind runs the program on a simulated CPU and counts what it
executed: the instructions, and the misses of its model of the machine's caches (code
that runs cold costs more than its instruction count says). Two counts of the same
suite agree within about 1 % (a client that waits on a server turns its loop a varying
number of times), whatever else the machine does. Its rough estimate of cycles,
instructions + 10 x level-1 misses + 100 x last-level misses, is the one the valgrind
manual gives.

What a count does not see: the time spent waiting for another process (a server's
answer) and the kernel's work in system calls; ``suite_overhead.py`` reports those in
its timed runs. Under valgrind the program runs 20 to 50 times slower while the
server does not, so the server's answers are ready sooner than in a timed run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Counts", "count", "valgrind"]

# One line of cachegrind's summary: "==PID== I1  misses:    28,826,966", the figure
# first (the data lines add "(rd + wr)" after it).
_SUMMARY = re.compile(r"^==\d+== (I|I1|LLi|D|D1|LLd)\s+(refs|misses):\s+([\d,]+)", re.M)


@dataclass(frozen=True)
class Counts:
    """What cachegrind counted in one process (or a difference of two)."""

    instructions: float
    l1_misses: float
    ll_misses: float

    @property
    def estimated_cycles(self) -> float:
        """The valgrind manual's rough estimate: Ir + 10 x L1 misses + 100 x LL misses."""
        return self.instructions + 10 * self.l1_misses + 100 * self.ll_misses

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.instructions - other.instructions,
            self.l1_misses - other.l1_misses,
            self.ll_misses - other.ll_misses,
        )

    def per(self, n: int) -> Counts:
        """Each count divided by ``n`` (per test, from a difference of two runs)."""
        return Counts(self.instructions / n, self.l1_misses / n, self.ll_misses / n)


def valgrind() -> str | None:
    """The ``valgrind`` executable on PATH, or None."""
    return shutil.which("valgrind")


def count(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float) -> Counts:
    """Run ``command`` under cachegrind (cache simulation on) and return the counts of
    its own process; a child it forks is counted apart and left out. Any failure of the
    command ends the benchmark with its output."""
    executable = valgrind()
    if executable is None:
        raise SystemExit("cachegrind counts need valgrind on PATH (apt install valgrind)")
    with tempfile.TemporaryDirectory() as logs:
        proc = subprocess.Popen(
            [
                executable,
                "--tool=cachegrind",
                "--cache-sim=yes",
                "--cachegrind-out-file=/dev/null",
                f"--log-file={logs}/cg.%p.log",
                *command,
            ],
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise SystemExit(
                f"cachegrind run took over {timeout:g} s: {' '.join(command)}"
            ) from None
        if proc.returncode != 0:
            raise SystemExit(
                f"exited {proc.returncode} under cachegrind: {' '.join(command)}\n{output[-3000:]}"
            )
        # valgrind runs the program in its own process: the main log is the one of
        # the pid we started.
        return _parse((Path(logs) / f"cg.{proc.pid}.log").read_text())


def _parse(log: str) -> Counts:
    found = {f"{kind} {what}": int(n.replace(",", "")) for kind, what, n in _SUMMARY.findall(log)}
    try:
        return Counts(
            instructions=found["I refs"],
            l1_misses=found["I1 misses"] + found["D1 misses"],
            ll_misses=found["LLi misses"] + found["LLd misses"],
        )
    except KeyError as missing:
        raise SystemExit(f"no cachegrind summary line {missing} in:\n{log[-2000:]}") from None
