"""The HTML report in a real browser: headless Chromium renders a generated report from
``file://`` with networking off, and the picture and the DOM show the page and its
charts. Needs Debian's ``chromium`` (CI installs it); skipped, saying so, without it."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.websocket_integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="headless Chromium not installed (Debian: apt-get install chromium)",
)

SUITE = """
import pytest

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(4))
async def test_talk(ws_client_factory, ws_isolation, n):
    clients = [await ws_client_factory() for _ in range(3)]
    for client in clients:
        await client.send_json({"type": "ping", "n": n})
        await client.expect(type="pong", n=n)

@pytest.mark.skip(reason="needs the staging gateway")
def test_skipped():
    pass
"""

# Flags that keep Chromium off the network and away from the user's profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=120,
        check=False,
    )


def png_rows(data: bytes, max_rows: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the first ``max_rows`` decoded pixel rows of an 8-bit RGB or
    RGBA PNG (enough of a decoder to look at a screenshot without Pillow)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), f"unexpected PNG format: depth {depth}, type {colour}"
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(bytes(idat))
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(min(height, max_rows)):
        filter_type = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                upper_left = previous[i - bpp] if i >= bpp else 0
                p = left + up - upper_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upper_left)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else upper_left)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, [bytes(r[i : i + 3]) for r in rows for i in range(0, stride, bpp)]


@pytest.fixture
def html_report(ws_pytester: pytest.Pytester, tmp_path: Path) -> Path:
    """A report of a real run against the embedded server."""
    path = tmp_path / "report.html"
    ws_pytester.makepyfile(test_render=SUITE)
    ws_pytester.runpytest("-p", "ws_resilience", f"--ws-report={path}").assert_outcomes(
        passed=4, skipped=1
    )
    return path


@needs_chromium
def test_chromium_renders_the_report_with_its_charts(html_report, tmp_path):
    shot = tmp_path / "report.png"
    done = chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=900,1100", html_report.as_uri()
    )
    assert shot.exists(), done.stderr.decode(errors="replace")[-2000:]

    data = shot.read_bytes()
    assert len(data) > 20_000  # a blank page compresses to a few KiB
    width, height, pixels = png_rows(data, max_rows=700)
    assert (width, height) == (900, 1100)
    counts = Counter(pixels)
    # Page background, tile borders, text, greens, bar blues, mark colours...
    assert len(counts) > 50, f"only {len(counts)} colours: a blank or broken page"
    # The histogram's bars (#0969da at 85% over white) cover a real area, and the
    # all-passed Tests tile shows its green figure.
    assert area(counts, (0x2E, 0x7F, 0xE0)) > 2_000
    assert area(counts, (0x1A, 0x7F, 0x37)) > 50


def area(counts: Counter[bytes], rgb: tuple[int, int, int], tolerance: int = 6) -> int:
    """Pixels within ``tolerance`` of ``rgb`` on every channel."""
    return sum(
        n for p, n in counts.items() if all(abs(p[i] - rgb[i]) <= tolerance for i in range(3))
    )


@needs_chromium
def test_chromium_dom_has_the_svg_charts_and_the_data(html_report, tmp_path):
    done = chromium(tmp_path, "--dump-dom", html_report.as_uri())
    dom = done.stdout.decode()
    assert "<h1>WebSocket resilience report</h1>" in dom, done.stderr.decode(errors="replace")[
        -2000:
    ]
    assert dom.count('<svg class="chart"') >= 2  # handshake histogram and timeline
    assert 'aria-label="Handshake time, every connection of the run"' in dom
    assert dom.count('class="test"') == 5  # one timeline bar per test
    assert dom.count('class="conn"') == 12  # 4 tests x 3 connections
    assert 'id="ws-report-data"' in dom
