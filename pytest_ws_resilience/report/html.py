"""The HTML report: one self-contained page rendered from the report document.

Inline CSS, inline SVG charts (`pytest_ws_resilience.report.svg`), no script and no
external URL, so the page opens from ``file://`` on a machine with no network. The
document itself is embedded as ``<script type="application/json">`` (data, never run),
so the one file carries both the picture and the numbers. Pure: returns a string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from pytest_ws_resilience.report.records import TestRecord
from pytest_ws_resilience.report.server_info import server_line
from pytest_ws_resilience.report.summary import (
    auth_text,
    close_codes_text,
    format_bytes,
    format_counts,
    plural,
    storm_line,
)
from pytest_ws_resilience.report.svg import OUTCOME_COLOURS, histogram, percentile_bars, timeline
from pytest_ws_resilience.stats import Distribution

__all__ = ["DATA_ELEMENT_ID", "embedded_json", "render_html"]

#: The id of the ``<script type="application/json">`` element holding the document.
DATA_ELEMENT_ID = "ws-report-data"

#: Rows of the tests table; a bigger run shows its first ones (the JSON has them all).
MAX_TABLE_ROWS = 2000

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px 48px; background: #f6f8fa; color: #1f2328;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 10px; }
.meta { color: #57606a; margin: 0 0 18px; }
.meta span { margin-right: 18px; white-space: nowrap; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
  gap: 12px; }
.tile { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 14px; }
.tile .label { color: #57606a; font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.tile .value { font-size: 24px; font-weight: 600; margin-top: 2px; }
.tile .detail { color: #57606a; font-size: 12px; margin-top: 2px; }
.tile.bad .value { color: #cf222e; }
.tile.good .value { color: #1a7f37; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 10px;
  overflow-x: auto; }
.card p { margin: 4px 6px; color: #57606a; font-size: 12px; }
.card h3 { font-size: 14px; margin: 2px 6px 4px; }
.card.storm { margin-bottom: 12px; }
.card.storm .charts { gap: 4px; }
svg.chart { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #d0d7de;
  border-radius: 8px; font-size: 13px; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #eaeef2;
  vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.nodeid { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px;
  overflow-wrap: anywhere; width: 36%; }
.pill { display: inline-block; padding: 0 8px; border-radius: 10px; color: #fff;
  font-size: 12px; font-weight: 600; }
.legend { color: #57606a; font-size: 12px; margin: 6px 0 0; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin: 0 4px 0 12px; vertical-align: -1px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0;
  background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 12px 14px; }
dt { color: #57606a; } dd { margin: 0; word-break: break-all; }
.muted { color: #8c959f; }
"""


def embedded_json(document: Mapping[str, Any]) -> str:
    """The document as JSON safe inside a ``<script>`` element: ``<``, ``>`` and ``&``
    escaped, so no string in it can close the element."""
    text = json.dumps(document, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _when(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)):
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ms(value: Any) -> str:
    return f"{value:.1f} ms" if isinstance(value, (int, float)) else "-"


def _tile(label: str, value: str, detail: str = "", tone: str = "") -> str:
    cls = f"tile {tone}".strip()
    detail_html = f'<div class="detail">{escape(detail)}</div>' if detail else ""
    return (
        f'<div class="{cls}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div>{detail_html}</div>'
    )


def _violations_text(isolation: Mapping[str, Any]) -> str:
    violations = int(isolation.get("violations", 0))
    expected = violations - int(isolation.get("unexpected_violations", 0))
    text = f"{plural(violations, 'violation')} in {plural(isolation.get('tests', 0), 'test')}"
    return f"{text} ({expected} provoked on purpose)" if expected else text


def _tiles(summary: Mapping[str, Any]) -> str:
    outcomes: Mapping[str, int] = summary.get("outcomes", {})
    failed = outcomes.get("failed", 0) + outcomes.get("error", 0)
    handshake = summary.get("handshake_ms", {})
    isolation = summary.get("isolation", {})
    chaos = summary.get("chaos", {})
    pool = summary.get("pool", {})
    skips: Mapping[str, int] = summary.get("skips", {})
    hit_rate = pool.get("hit_rate")
    tiles = [
        _tile(
            "Tests",
            str(summary.get("tests", 0)),
            format_counts(outcomes),
            "bad" if failed else "good",
        ),
        _tile(
            "Connections opened",
            str(summary.get("connections_opened", 0)),
            "auth: " + (auth_text(summary.get("auth_methods", {})) or "-"),
        ),
        _close_tile(summary),
        _tile(
            "Handshake p50",
            _ms(handshake.get("p50")),
            f"p95 {_ms(handshake.get('p95'))}, max {_ms(handshake.get('max'))}",
        ),
        _tile(
            "Messages",
            f"{summary.get('messages_sent', 0)} / {summary.get('messages_received', 0)}",
            f"sent / received; {format_bytes(summary.get('bytes_sent', 0))} / "
            f"{format_bytes(summary.get('bytes_received', 0))}",
        ),
        _tile(
            "Isolation checks",
            str(isolation.get("checks", 0)),
            _violations_text(isolation),
            "bad" if isolation.get("unexpected_violations") else "",
        ),
        _tile(
            "Chaos faults applied",
            str(chaos.get("faults_applied", 0)),
            format_counts(chaos.get("faults", {})) or f"{chaos.get('proxies', 0)} proxies",
        ),
        _tile(
            "Pool hit rate",
            "-" if hit_rate is None else f"{hit_rate:.0%}",
            f"{plural(pool.get('hits', 0), 'hit')}, "
            f"{plural(pool.get('misses', 0), 'miss', 'misses')}",
        ),
        _tile(
            "Services started",
            str(len(summary.get("services_started", []))),
            format_counts(summary.get("services_used", {})),
        ),
        _tile("Skipped", str(sum(skips.values())), plural(len(skips), "reason") if skips else ""),
    ]
    return '<div class="tiles">' + "".join(tiles) + "</div>"


def _close_tile(summary: Mapping[str, Any]) -> str:
    """Close codes: the codes seen, most frequent first; the counts and who closed."""
    codes: Mapping[str, int] = summary.get("close_codes") or {}
    closed_by: Mapping[str, int] = summary.get("closed_by") or {}
    still_open = int(summary.get("still_open") or 0)
    return _tile(
        "Close codes",
        ", ".join(codes) or "-",
        close_codes_text(codes, closed_by, still_open) if codes or still_open else "",
    )


def _storm_cards(tests: Sequence[Mapping[str, Any]]) -> list[str]:
    """One card per storm: what ran, and a chart per distribution it measured."""
    cards = []
    for test in tests:
        for storm in test.get("storms", ()):
            label = str(storm.get("label") or storm.get("kind") or "storm")
            charts = []
            for name, dist in (storm.get("distributions") or {}).items():
                if not isinstance(dist, Mapping) or not dist.get("count"):
                    continue
                samples = [
                    float(v) for v in dist.get("samples") or () if isinstance(v, (int, float))
                ]
                if samples:
                    marks = {k: dist.get(k) for k in ("p50", "p95", "p99")}
                    charts.append(histogram(samples, title=name, marks=marks, width=400))
                else:
                    charts.append(percentile_bars(dist, title=name, width=400))
            cards.append(
                f'<div class="card storm"><h3>{escape(label)}</h3>'
                f'<p>{escape(storm_line(storm, named=False))}<br><span class="muted">'
                f"{escape(str(test.get('nodeid')))}</span></p>"
                f'<div class="charts">{"".join(charts)}</div></div>'
            )
    return cards


def _test_row(record: Mapping[str, Any]) -> str:
    outcome = str(record.get("outcome"))
    colour = OUTCOME_COLOURS.get(outcome, "#57606a")
    handshakes = Distribution.of(c["handshake_ms"] for c in record.get("connections", ()))
    isolation = record.get("isolation")
    if isolation is None:
        iso = '<span class="muted">off</span>'
    else:
        mark = " (expected)" if isolation.get("expected") and isolation["violations"] else ""
        iso = f"{isolation['checks']} / {isolation['violations']}{mark}"
    chaos = record.get("chaos", {})
    faults = escape(format_counts(chaos.get("faults", {}))) or ('<span class="muted">-</span>')
    pool = record.get("pool", {})
    pool_text = (
        f"{pool.get('hits', 0)} / {pool.get('misses', 0)}"
        if pool.get("hits") or pool.get("misses")
        else '<span class="muted">-</span>'
    )
    codes: Mapping[str, int] = record.get("close_codes") or {}
    close_text = (
        escape(", ".join(f"{code} x {count}" for code, count in codes.items()))
        if codes
        else '<span class="muted">-</span>'
    )
    note = escape(record.get("skip_reason") or "")
    return (
        f'<tr><td class="nodeid">{escape(str(record.get("nodeid")))}'
        f"{f'<br><span class=muted>{note}</span>' if note else ''}</td>"
        f"<td>{escape(str(record.get('worker')))}</td>"
        f'<td><span class="pill" style="background:{colour}">{escape(outcome)}</span></td>'
        f'<td class="num">{record.get("duration_s", 0) * 1000:.1f} ms</td>'
        f'<td class="num">{record.get("connections_opened", 0)}</td>'
        f'<td class="num">{_ms(handshakes.p50)}</td><td>{close_text}</td>'
        f'<td class="num">{record.get("messages_sent", 0)} / '
        f"{record.get('messages_received', 0)}</td>"
        f'<td class="num">{iso}</td><td>{faults}</td><td class="num">{pool_text}</td></tr>'
    )


def _tests_table(tests: Sequence[Mapping[str, Any]]) -> str:
    head = (
        "<tr><th>test</th><th>worker</th><th>outcome</th><th class=num>duration</th>"
        "<th class=num>connections</th><th class=num>handshake p50</th><th>close codes</th>"
        "<th class=num>messages out / in</th><th class=num>isolation checks / violations</th>"
        "<th>chaos faults</th><th class=num>pool hits / misses</th></tr>"
    )
    rows = "".join(_test_row(t) for t in tests[:MAX_TABLE_ROWS])
    more = (
        f'<p class="legend">{len(tests) - MAX_TABLE_ROWS} more tests in the JSON data.</p>'
        if len(tests) > MAX_TABLE_ROWS
        else ""
    )
    return f"<table>{head}{rows}</table>{more}"


def _server_items(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The tested server's rows: kind, URL(s), app, command, services."""
    server = run.get("server")
    if not isinstance(server, Mapping):
        return [("server", str(run.get("url", "-")))]
    items = [("server", server_line(server)), ("server kind", str(server.get("kind", "-")))]
    for url in server.get("urls") or ([server["url"]] if server.get("url") else []):
        items.append(("server URL", str(url)))
    if server.get("app"):
        mode = f"{server.get('app_mode')}, lifespan {server.get('app_lifespan')}"
        items.append(("server app", f"{server['app']} ({mode})"))
    if server.get("command"):
        items.append(("server command", str(server["command"])))
    for name in server.get("services") or []:
        items.append(("configured service", str(name)))
    return items


def _server_text(run: Mapping[str, Any]) -> str:
    server = run.get("server")
    return server_line(server) if isinstance(server, Mapping) else str(run.get("url", "-"))


def _run_details(run: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    items: list[tuple[str, str]] = [
        ("env", str(run.get("env", "-"))),
        *_server_items(run),
        ("started", _when(run.get("started_at"))),
        ("finished", _when(run.get("finished_at"))),
        ("workers", ", ".join(run.get("workers", [])) or "-"),
        ("chaos seed", str(run.get("chaos_seed", "-"))),
    ]
    seeds = summary.get("chaos", {}).get("seeds", {})
    if seeds and set(seeds.values()) != {run.get("chaos_seed")}:
        items.append(("chaos seeds by worker", format_counts(seeds)))
    for name, timeout in (run.get("timeouts") or {}).items():
        items.append((name, f"{timeout.get('value')} ({timeout.get('source')})"))
    if run.get("auth"):
        items.append(("auth", str(run["auth"])))
    for line in summary.get("services_started", []):
        items.append(("service", str(line)))
    for reason, count in (summary.get("skips") or {}).items():
        items.append((f"skipped x{count}", str(reason)))
    if run.get("args"):
        items.append(("command line", " ".join(str(a) for a in run["args"])))
    versions = ", ".join(f"{k} {v}" for k, v in (run.get("versions") or {}).items())
    if versions:
        items.append(("versions", versions))
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
    return f"<dl>{body}</dl>"


def render_html(document: Mapping[str, Any]) -> str:
    """The page for a report document (see `report.document.build_document`)."""
    run: Mapping[str, Any] = document.get("run", {})
    summary: Mapping[str, Any] = document.get("summary", {})
    tests: Sequence[Mapping[str, Any]] = document.get("tests", [])
    records = [TestRecord.from_dict(t) for t in tests]
    handshake = summary.get("handshake_ms", {})
    samples = [c.handshake_ms for r in records for c in r.connections]
    charts = [
        '<div class="card">'
        + histogram(
            samples,
            title="Handshake time, every connection of the run",
            marks={k: handshake.get(k) for k in ("p50", "p95", "p99")},
        )
        + f"<p>{len(samples)} connections</p></div>",
    ]
    storms = _storm_cards(tests)
    storm_section = f"<h2>Storms ({len(storms)})</h2>{''.join(storms)}" if storms else ""
    started = run.get("started_at")
    finished = run.get("finished_at")
    took = (
        f"{finished - started:.2f} s"
        if isinstance(started, (int, float)) and isinstance(finished, (int, float))
        else "-"
    )
    meta = "".join(
        f"<span>{escape(k)}: <b>{escape(v)}</b></span>"
        for k, v in (
            ("env", str(run.get("env", "-"))),
            ("server", _server_text(run)),
            ("started", _when(started)),
            ("took", took),
            ("workers", ", ".join(run.get("workers", [])) or "-"),
        )
    )
    legend = "".join(
        f'<i style="background:{colour}"></i>{escape(name)}'
        for name, colour in OUTCOME_COLOURS.items()
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>WebSocket resilience report</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>WebSocket resilience report</h1>"
        f'<p class="meta">{meta}</p>'
        f"{_tiles(summary)}"
        "<h2>Latency distributions</h2>"
        f'<div class="charts">{"".join(charts)}</div>'
        f"{storm_section}"
        "<h2>Timeline</h2>"
        f'<div class="card">{timeline(records)}'
        f'<p class="legend">tests:{legend}<i style="background:#0969da"></i>handshake'
        '<i style="background:#80b6f7"></i>connection open</p></div>'
        f"<h2>Tests ({len(tests)})</h2>{_tests_table(tests)}"
        f"<h2>Run</h2>{_run_details(run, summary)}"
        f'<script type="application/json" id="{DATA_ELEMENT_ID}">'
        f"{embedded_json(document)}</script>"
        "</body></html>\n"
    )
