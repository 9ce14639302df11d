"""A server's log, trimmed to what a person reads in a failure: the digest rule.

A server that fails on every request logs the same traceback on every readiness
attempt; 30 s of that was 18,654 lines holding 1,130 copies of one traceback, with the
cause (the first lines: the import, the settings, the port) buried at the top. Every
error that attaches a server's log (the ASGI app, ``--ws-server-cmd``, Docker and
process services) attaches `digest` of it instead:

1. a traceback (``Traceback (most recent call last):`` up to its exception line) seen
   before is dropped, and the first copy says ``... the same traceback N times``
   (memory addresses, client addresses and ports, pids and clock times do not make
   two copies differ);
2. a line, or a group of up to 4 lines, repeated in a row (what is left between the
   dropped tracebacks: an error line and an access log line per attempt) is kept
   once, with ``... the same line N times`` (``... the same 2 lines N times``;
   "similar" when only such numbers differ, e.g. the client's port);
3. what remains longer than ``max_lines`` keeps its first lines (how the server
   started) and its last ones (how it ended), with one line saying how many were left
   out between them.

Pure: text in, text out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DIGEST_MAX_LINES", "HEAD_LINES", "digest"]

#: The most lines a digest has, marker lines included.
DIGEST_MAX_LINES = 60
#: Of those, the first lines kept when the log is cut (the rest are its last lines).
HEAD_LINES = 15

_TRACEBACK_START = "Traceback (most recent call last):"
# What makes two copies of one event differ: memory addresses, client addresses and
# ports, pids in brackets, clock times. Other numbers count (``attempt 3`` is not
# ``attempt 4``).
_VARYING = re.compile(
    r"0x[0-9a-fA-F]+"
    r"|\d{1,3}(?:\.\d{1,3}){3}(?::\d+|', \d+)"
    r"|\[\d+\]"
    r"|\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?"
    r"|\d{4}-\d{2}-\d{2}"
)


@dataclass
class _Block:
    lines: list[str]
    traceback: bool
    count: int = 1

    @property
    def key(self) -> str:
        return _VARYING.sub("#", "\n".join(self.lines))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


_CHAIN = ("During handling of the above", "The above exception was")
#: The longest group of lines folded when it repeats (e.g. an error line and an access
#: log line per readiness attempt, once their tracebacks are dropped).
_MAX_PERIOD = 4


def _blocks(lines: list[str]) -> list[_Block]:
    """The log as blocks: each traceback one block, every other line a block of its own."""
    blocks: list[_Block] = []
    i, n = 0, len(lines)
    while i < n:
        if lines[i].strip() != _TRACEBACK_START:
            blocks.append(_Block([lines[i]], traceback=False))
            i += 1
            continue
        # Frames are indented; the first other unindented line is the exception, and
        # ends the block unless a chained traceback ("During handling ...") follows.
        end = i + 1
        while end < n:
            current = lines[end]
            if (
                current.startswith((" ", "\t"))
                or not current.strip()
                or current.strip() == _TRACEBACK_START
                or current.startswith(_CHAIN)
            ):
                end += 1
                continue
            end += 1  # the exception line
            ahead = end
            while ahead < n and not lines[ahead].strip():
                ahead += 1
            if ahead < n and lines[ahead].startswith(_CHAIN):
                end = ahead
                continue
            break
        blocks.append(_Block(lines[i:end], traceback=True))
        i = end
    return blocks


def _fold(blocks: list[_Block]) -> list[list[str]]:
    """Later copies of a traceback dropped (counted on the first), then a group of up
    to `_MAX_PERIOD` blocks repeated in a row kept once (counted); as rendered lines."""
    first: dict[str, _Block] = {}
    kept: list[_Block] = []
    for block in blocks:
        if block.traceback:
            seen = first.get(block.key)
            if seen is not None:
                seen.count += 1
                continue
            first[block.key] = block
        kept.append(block)
    keys = [block.key for block in kept]
    out: list[list[str]] = []
    i = 0
    while i < len(kept):
        for period in range(1, _MAX_PERIOD + 1):
            group = keys[i : i + period]
            repeats = 1
            while keys[i + repeats * period : i + (repeats + 1) * period] == group:
                repeats += 1
            if repeats > 1 and "".join(group).strip():
                for block in kept[i : i + period]:
                    out.append(_rendered(block))
                what = "line" if period == 1 else f"{period} lines"
                texts = {
                    tuple(b.text for b in kept[j : j + period])
                    for j in range(i, i + period * repeats, period)
                }
                same = "the same" if len(texts) == 1 else "similar"
                out.append([f"... {same} {what} {repeats:,} times"])
                i += period * repeats
                break
        else:
            out.append(_rendered(kept[i]))
            i += 1
    return out


def _rendered(block: _Block) -> list[str]:
    if block.count == 1:
        return list(block.lines)
    return [*block.lines, f"... the same traceback {block.count:,} times"]


def digest(text: str, max_lines: int = DIGEST_MAX_LINES) -> str:
    """``text`` trimmed by the rule of this module: at most ``max_lines`` lines (at
    least 3), repeated tracebacks and lines folded with a count, the first and the last
    lines kept. ``(no output)`` for an empty log."""
    max_lines = max(3, max_lines)
    lines = text.rstrip().splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return "(no output)"
    out = [line for group in _fold(_blocks(lines)) for line in group]
    if len(out) > max_lines:
        head = min(HEAD_LINES, (max_lines - 1) // 2)
        tail = max_lines - 1 - head
        skipped = len(out) - head - tail
        out = [*out[:head], f"... {skipped:,} lines left out ...", *out[-tail:]]
    return "\n".join(out)
