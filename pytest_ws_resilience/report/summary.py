"""The terminal summary's text: a `RunSummary` as short lines. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_ws_resilience.report.aggregate import RunSummary

__all__ = [
    "MAX_STORM_LINES",
    "auth_text",
    "close_codes_text",
    "format_bytes",
    "format_counts",
    "plural",
    "storm_line",
    "summary_lines",
]

#: Storms listed one per line; more are counted in one last line.
MAX_STORM_LINES = 5


def format_bytes(count: int) -> str:
    """``1536`` -> ``1.5 KiB``: binary units, one decimal, bytes as they are."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``plural(1, "hit")`` -> ``1 hit``; ``plural(2, "hit")`` -> ``2 hits``."""
    return f"{count} {singular if count == 1 else many or singular + 's'}"


def format_counts(counts: Mapping[str, int]) -> str:
    """``{"drop": 2, "delay": 1}`` -> ``drop 2, delay 1``."""
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def auth_text(counts: Mapping[str, int]) -> str:
    """Connections by auth method: ``none`` alone when no connection presented a token
    (an unauthenticated server), else ``subprotocol 12, query 1``."""
    if counts and set(counts) == {"none"}:
        return "none"
    return format_counts(counts)


def close_codes_text(
    codes: Mapping[str, int], closed_by: Mapping[str, int], still_open: int = 0
) -> str:
    """``1000 x 120, 4001 x 2, 1006 x 1 (closed by client 120, server 2, network 1)``,
    and the connections still open when their test ended (pooled ones)."""
    text = ", ".join(f"{code} x {count}" for code, count in codes.items()) or "none"
    if closed_by:
        text += f" (closed by {format_counts(closed_by)})"
    if still_open:
        text += f"; {still_open} still open at the end of their test"
    return text


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def storm_line(storm: Mapping[str, Any], *, named: bool = True) -> str:
    """One storm as one line: what ran (unless ``named`` is false), how many made it,
    percentiles of each distribution, errors and memory growth (and per connection)."""
    label = storm.get("label") or storm.get("kind") or "storm"
    kind = storm.get("kind")
    head = f"{label} ({kind})" if kind and kind != label else str(label)
    parts = [f"{storm.get('succeeded', '?')}/{storm.get('attempted', '?')} ok"]
    distributions = storm.get("distributions") or {}
    for name, dist in distributions.items():
        if isinstance(dist, Mapping) and dist.get("count"):
            short = name.removesuffix("_ms")
            parts.append(
                f"{short} p50/p95/p99 {_num(dist.get('p50'))}/{_num(dist.get('p95'))}/"
                f"{_num(dist.get('p99'))} ms"
            )
    errors = {kind: n for kind, n in (storm.get("errors") or {}).items() if n}
    parts.append("errors: " + format_counts(errors) if errors else "no errors")
    growth = storm.get("rss_growth_bytes")
    if isinstance(growth, int):
        per = storm.get("rss_per_connection_bytes")
        each = f" ({format_bytes(int(per))} per connection)" if isinstance(per, float) else ""
        parts.append(f"RSS +{format_bytes(growth)}{each}")
    if isinstance(server := storm.get("server_growth_text"), str):
        parts.append(f"server growth per 1,000 cycles: {server}")
    return f"{head}: " + ", ".join(parts) if named else ", ".join(parts)


def _num(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


def summary_lines(
    summary: RunSummary, *, report: str | None = None, server: str | None = None
) -> list[str]:
    """The lines of the ``ws-resilience`` terminal section.

    Args:
        report: what became of ``--ws-report`` ("written to PATH", or the error), if given.
        server: the server really tested, one line (`server_info.server_line`), if given.
    """
    lines: list[str] = []
    if server is not None:
        lines.append(f"server: {server}")
    where = f" on {len(summary.workers)} workers" if len(summary.workers) > 1 else ""
    outcomes = format_counts(summary.outcomes) or "none"
    lines.append(
        f"tests: {summary.tests}{where} ({outcomes}); "
        f"{summary.tests_using_plugin} used WebSocket connections"
    )
    auth = f" (auth: {auth_text(summary.auth_methods)})" if summary.auth_methods else ""
    retries = f", {summary.retries} retries" if summary.retries else ""
    lines.append(f"connections opened: {summary.connections}{auth}{retries}")
    if summary.close_codes or summary.still_open:
        text = close_codes_text(summary.close_codes, summary.closed_by, summary.still_open)
        lines.append(f"close codes: {text}")
    hs = summary.handshake_ms
    if hs.count:
        lines.append(
            f"handshake: p50 {_ms(hs.p50)}, p95 {_ms(hs.p95)} (n={hs.count}, max {_ms(hs.max)})"
        )
    lines.append(
        f"messages: {summary.messages_sent} sent, {summary.messages_received} received "
        f"({format_bytes(summary.bytes_sent)} out, {format_bytes(summary.bytes_received)} in)"
    )
    if summary.isolation_tests:
        expected = summary.isolation_violations - summary.isolation_unexpected
        note = f" ({expected} provoked on purpose)" if expected else ""
        lines.append(
            f"isolation: {summary.isolation_checks} frames checked in "
            f"{plural(summary.isolation_tests, 'test')}, "
            f"{plural(summary.isolation_violations, 'violation')}{note}"
        )
    else:
        lines.append("isolation: off (no test used ws_isolation)")
    if summary.chaos_proxies:
        faults = f" ({format_counts(summary.chaos_faults)})" if summary.chaos_faults else ""
        seeds = set(summary.chaos_seeds.values())
        if len(seeds) == 1:
            seed_text = f"; seed {seeds.pop()}"
        elif seeds:
            seed_text = "; seeds " + ", ".join(f"{w}={s}" for w, s in summary.chaos_seeds.items())
        else:
            seed_text = ""
        lines.append(
            f"chaos: {plural(summary.chaos_applied, 'fault')} applied{faults} by "
            f"{plural(summary.chaos_proxies, 'proxy', 'proxies')}{seed_text}"
        )
    rate = summary.pool_hit_rate
    if rate is not None:
        lines.append(
            f"pool: hit rate {rate:.0%} ({plural(summary.pool_hits, 'hit')}, "
            f"{plural(summary.pool_misses, 'miss', 'misses')})"
        )
    if summary.services_started:
        lines.append("services started: " + "; ".join(summary.services_started))
    if summary.services_used:
        lines.append("services used: " + format_counts(summary.services_used))
    if summary.skips:
        total = sum(summary.skips.values())
        lines.append(f"skipped: {total}")
        lines.extend(f"  {count} x {reason}" for reason, count in summary.skips.items())
    for storm in summary.storms[:MAX_STORM_LINES]:
        lines.append("storm " + storm_line(storm))
    if len(summary.storms) > MAX_STORM_LINES:
        lines.append(
            f"... and {len(summary.storms) - MAX_STORM_LINES} more storms (see the report)"
        )
    if report is not None:
        lines.append(f"report: {report}")
    return lines
