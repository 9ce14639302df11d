"""What the isolation checks cost on the round trip, as ratios measured in one run.

Usage: ``python benchmarks/isolation.py [--users 50] [--messages 200] [--batches 20]
[--strict]``

``--users`` WsClients (one user each) hold connections to one `EmbeddedServer`, each in
a room of its own (the reference server's rooms), and all post at once: each sends
``--messages`` posts ``{"type": "post", "room": ..., "value": ...}`` (a distinct value
every time, so the detector's taint markers keep growing: 10,000 of them at the
defaults) and awaits its ``room_event``. The same clients take turns, batch after
batch, in three sides whose order rotates, so the machine's noise hits all alike:

- OFF: nothing attached;
- DETECTOR: one `IsolationDetector` on every client (kept across batches: its markers
  accumulate);
- RULES: the detector plus a scope rule (``room``) and a stream rule (``room_seq`` per
  ``room``) on every client: every frame judged by all three.

Prints the median and p95 round trip of each side, and the ratios DETECTOR/OFF and
RULES/OFF against the target (<= 1.2x), each taken as the median over batches of the
ratio of that batch's medians (so a change of the machine's load during the run cancels
out), with the ratio of the overall medians beside it; markers indexed, frames judged.
Exits 0 unless ``--strict`` and a target is missed. The server runs in its own thread and
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
from pytest_ws_resilience.client.observers import ClientObserver
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.scopes import ScopeRule
from pytest_ws_resilience.isolation.streams import StreamRule
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]

TARGET = 1.2


async def _chat(client: WsClient, room: str, messages: int, times: list[float]) -> None:
    for n in range(messages):
        value = f"note {n} from {client.name}: {uuid.uuid4().hex}"
        started = time.perf_counter()
        await client.send_json({"type": "post", "room": room, "value": value})
        await client.expect("room_event", value=value)
        times.append(time.perf_counter() - started)


async def _batch(
    clients: list[WsClient], rooms: list[str], messages: int, times: list[float]
) -> float:
    started = time.perf_counter()
    await asyncio.gather(
        *(_chat(client, room, messages, times) for client, room in zip(clients, rooms, strict=True))
    )
    return time.perf_counter() - started


SIDES = ("off", "detector", "rules")


async def _run(url: str, tokens: TokenFactory, args: argparse.Namespace) -> bool:
    clients = [
        WsClient(url, user=tokens.user(), recv_timeout=30.0, ping_interval=None)
        for _ in range(args.users)
    ]
    rooms = [f"room-{n}" for n in range(args.users)]
    detector = IsolationDetector()
    scope = ScopeRule("room", join={"type": "join"})
    # A stream rule sees every frame of its streams or reports the numbers it missed:
    # each RULES batch gets a fresh one (the other sides' frames are not its).
    streams: list[StreamRule] = []
    observers: dict[str, list[ClientObserver]] = {"off": [], "detector": [detector]}
    per_batch = max(1, args.messages // args.batches)
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    # Per batch, the ratio of each side's median to OFF's: cancels the drift of a
    # shared machine's load over the run.
    ratios: dict[str, list[float]] = {"detector": [], "rules": []}
    try:
        await asyncio.gather(*(client.connect() for client in clients))
        await asyncio.gather(*(client.expect("connection_established") for client in clients))
        for client, room in zip(clients, rooms, strict=True):
            client.entitle(room=room)  # joined before the rule watches: said by hand
            await client.send_json({"type": "join", "room": room})
            await client.expect("joined", room=room)
        await _batch(clients, rooms, 5, [])  # warm up
        for n in range(args.batches):
            order = SIDES[n % 3 :] + SIDES[: n % 3]
            batch: dict[str, list[float]] = {side: [] for side in SIDES}
            for side in order:
                if side == "rules":
                    streams.append(StreamRule("room_seq", per="room"))
                    observers["rules"] = [detector, scope, streams[-1]]
                for client in clients:
                    for observer in observers[side]:
                        client.add_observer(observer)
                await _batch(clients, rooms, per_batch, batch[side])
                for client in clients:
                    for observer in observers[side]:
                        client.remove_observer(observer)
            for side in SIDES:
                times[side] += batch[side]
            off = statistics.median(batch["off"])
            for side in ratios:
                ratios[side].append(statistics.median(batch[side]) / off)
    finally:
        await asyncio.gather(*(client.close() for client in clients))

    def pct(values: list[float], q: float) -> float:
        return sorted(values)[int(q * (len(values) - 1))]

    for side in SIDES:
        found = times[side]
        print(
            f"round trip  {side.upper():8} median {statistics.median(found) * 1e6:8.1f} us  "
            f"p95 {pct(found, 0.95) * 1e6:8.1f} us   ({len(found)} round trips)"
        )
    ok = True
    median_off = statistics.median(times["off"])
    for side, found in ratios.items():
        ratio = statistics.median(found)
        ok = ok and ratio <= TARGET
        print(
            f"ratio {side.upper()}/OFF {ratio:5.3f}x (target <= {TARGET}x)  "
            f"{'PASS' if ratio <= TARGET else 'FAIL'}  [median of {len(found)} batches; "
            f"ratio of the medians above {statistics.median(times[side]) / median_off:5.3f}x]"
        )
    print(
        f"markers indexed {detector.marker_count}, frames scanned {detector.checks}; "
        f"scope rule judged {scope.checks}, stream rules {sum(r.checks for r in streams)}"
    )
    found = [v for rule in (scope, *streams) for v in rule.violations]
    if detector.violation_count or found:
        print("unexpected findings on a clean server:")
        print(detector.report())
        print("\n".join(f"  {violation}" for violation in found[:5]))
        ok = False
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=50, help="users, one connection each")
    parser.add_argument("--messages", type=int, default=200, help="round trips per user/side")
    parser.add_argument(
        "--batches", type=int, default=20, help="batches (each runs all three sides)"
    )
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
