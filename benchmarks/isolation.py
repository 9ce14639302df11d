"""What the isolation detector costs on the round trip, as a ratio measured in one run.

Usage: ``python benchmarks/isolation.py [--users 50] [--messages 200] [--batches 20]
[--strict]``

``--users`` WsClients (one user each) hold connections to one `EmbeddedServer` and all
chat at once: each sends ``--messages`` application pings ``{"type": "ping", "text":
...}`` (a distinct text every time, so the detector's taint markers keep growing: 10,000
of them at the defaults) and awaits the echoing ``pong``. The same clients alternate
between batches with the detector ON (one `IsolationDetector` attached to every client,
kept across batches so its markers accumulate) and OFF (detached), ON/OFF/OFF/ON..., so
the machine's noise hits both sides alike.

Prints the median and p95 round trip of each side; the ratio ON/OFF against the target
(<= 1.2x), taken as the median over pairs of adjacent batches of their median ratio
(so a change of the machine's load during the run cancels out), with the ratio of the
overall medians and of the wall times beside it; markers indexed and frames scanned.
Exits 0 unless ``--strict`` and the target is missed. The server runs in its own thread and
loop (see ``client_overhead.py``): the loop measured runs only the clients.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

TARGET = 1.2


async def _chat(client: WsClient, messages: int, times: list[float]) -> None:
    for n in range(messages):
        text = f"note {n} from {client.name}: {uuid.uuid4().hex}"
        started = time.perf_counter()
        await client.send_json({"type": "ping", "text": text})
        await client.expect("pong", text=text)
        times.append(time.perf_counter() - started)


async def _batch(clients: list[WsClient], messages: int, times: list[float]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(_chat(client, messages, times) for client in clients))
    return time.perf_counter() - started


async def _run(url: str, tokens: TokenFactory, args: argparse.Namespace) -> bool:
    clients = [
        WsClient(url, user=tokens.user(), recv_timeout=30.0, ping_interval=None)
        for _ in range(args.users)
    ]
    detector = IsolationDetector()
    per_batch = max(1, args.messages // args.batches)
    on: list[float] = []
    off: list[float] = []
    wall = {"on": 0.0, "off": 0.0}
    # Median ON/OFF ratio of each pair of adjacent batches: cancels the drift of a
    # shared machine's load over the run.
    pair_ratios: list[float] = []
    try:
        await asyncio.gather(*(client.connect() for client in clients))
        await asyncio.gather(*(client.expect("connection_established") for client in clients))
        await _batch(clients, 5, [])  # warm up
        for n in range(args.batches):
            order = ("on", "off") if n % 2 == 0 else ("off", "on")
            batch: dict[str, list[float]] = {"on": [], "off": []}
            for side in order:
                if side == "on":
                    for client in clients:
                        detector.attach(client)
                    wall["on"] += await _batch(clients, per_batch, batch["on"])
                    for client in clients:
                        detector.detach(client)
                else:
                    wall["off"] += await _batch(clients, per_batch, batch["off"])
            on += batch["on"]
            off += batch["off"]
            pair_ratios.append(statistics.median(batch["on"]) / statistics.median(batch["off"]))
    finally:
        await asyncio.gather(*(client.close() for client in clients))

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[int(q * (len(values) - 1))]

    median_on, median_off = statistics.median(on), statistics.median(off)
    ratio = statistics.median(pair_ratios)
    ok = ratio <= TARGET
    print(
        f"round trip  ON  median {median_on * 1e6:8.1f} us  p95 {pct(on, 0.95) * 1e6:8.1f} us"
        f"   ({len(on)} round trips, {wall['on']:.2f} s)"
    )
    print(
        f"round trip  OFF median {median_off * 1e6:8.1f} us  p95 {pct(off, 0.95) * 1e6:8.1f} us"
        f"   ({len(off)} round trips, {wall['off']:.2f} s)"
    )
    print(
        f"ratio ON/OFF {ratio:5.3f}x (target <= {TARGET}x)  {'PASS' if ok else 'FAIL'}  "
        f"[median of {len(pair_ratios)} paired batches; ratio of the medians above "
        f"{median_on / median_off:5.3f}x, of wall times {wall['on'] / wall['off']:5.3f}x]"
    )
    print(
        f"markers indexed {detector.marker_count}, frames scanned {detector.checks}, "
        f"violations {detector.violation_count}"
    )
    if detector.violation_count:
        print("unexpected violations on a clean server:\n" + detector.report())
        ok = False
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=50, help="users, one connection each")
    parser.add_argument("--messages", type=int, default=200, help="round trips per user/side")
    parser.add_argument("--batches", type=int, default=20, help="ON/OFF alternations")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args(argv)
    tokens = TokenFactory()
    config = ServerConfig(secret=tokens.secret, ping_interval=None)
    with EmbeddedServer(config) as server:
        print(
            f"server {server.url}; {args.users} users x {args.messages} round trips per side, "
            f"{args.batches} interleaved batches"
        )
        ok = asyncio.run(_run(server.url, tokens, args))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
