"""The log digest rule, pure: repeated tracebacks folded with a count, repeated lines
and groups kept once, the first and last lines kept, at most the cap."""

from __future__ import annotations

from pytest_ws_resilience.servers.log_digest import DIGEST_MAX_LINES, HEAD_LINES, digest

TRACEBACK = [
    "ERROR:    Exception in ASGI application",
    "Traceback (most recent call last):",
    '  File "/app/views.py", line 3, in app',
    '    raise RuntimeError("boom at 0x7f00aa11bb22")',
    "RuntimeError: boom at 0x7f00aa11bb22",
]


def test_a_traceback_repeated_1130_times_is_shown_once_with_its_count() -> None:
    attempts = []
    for n in range(1130):
        block = [line.replace("7f00aa11bb22", f"7f00aa11{n:04x}") for line in TRACEBACK]
        attempts += [*block, f'INFO:     127.0.0.1:{40000 + n} - "WebSocket /ws" 500']
    log = ["INFO:     Started server process [7]", *attempts, "INFO:     Shutting down"]
    out = digest("\n".join(log)).splitlines()
    assert len(out) <= DIGEST_MAX_LINES
    assert out[0] == "INFO:     Started server process [7]" and out[-1] == "INFO:     Shutting down"
    assert sum(line.startswith("RuntimeError: boom") for line in out) == 1
    assert "... the same traceback 1,130 times" in out
    assert any(line.startswith("... similar 2 lines 1,129 times") for line in out)


def test_chained_tracebacks_are_one_block() -> None:
    chained = [
        "Traceback (most recent call last):",
        '  File "a.py", line 1, in f',
        "KeyError: 'x'",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "a.py", line 3, in f',
        "ValueError: no x",
    ]
    out = digest("\n".join(chained * 4)).splitlines()
    assert out == [*chained, "... the same traceback 4 times"]


def test_a_long_log_keeps_its_first_and_last_lines_and_says_what_was_left_out() -> None:
    out = digest("\n".join(f"step {n}" for n in range(500))).splitlines()
    assert len(out) == DIGEST_MAX_LINES
    assert out[:HEAD_LINES] == [f"step {n}" for n in range(HEAD_LINES)]
    assert out[HEAD_LINES] == f"... {500 - DIGEST_MAX_LINES + 1:,} lines left out ..."
    assert out[-1] == "step 499"
    assert len(digest("\n".join(f"s{n}" for n in range(500)), max_lines=10).splitlines()) == 10


def test_short_logs_are_kept_as_they_are() -> None:
    assert digest("") == "(no output)"
    assert digest("\n\n  \n") == "(no output)"
    assert digest("\nstarting\nlistening on 8000\n\n") == "starting\nlistening on 8000"
    assert digest("a\nb\na\nb") == "a\nb\n... the same 2 lines 2 times"
