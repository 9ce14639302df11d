"""How our asyncio client runs inside a Locust worker (gevent): the options, measured.

Usage: ``python benchmarks/locust_bridge.py [--cycles N] [--concurrency C] [--round-trips M]``

Each option runs in a fresh process (gevent's ``patch_all`` is process-wide), against
one reference server in its own process, with the same users and tokens:

- ``asyncio``: plain asyncio, no gevent (what ``ws_storm`` does): the baseline;
- ``loop-thread``: Locust imported (the process is monkey-patched), ONE asyncio loop in
  a native thread (`pytest_ws_resilience.locust.bridge.LoopThread`), C greenlets each
  handing a whole cycle (connect, ping/pong, close through `WsClient`) to the loop;
- ``loop-thread-hop``: the same, but every round trip its own greenlet->loop->greenlet
  hop (the worst case: a player that returned to gevent after each step);
- ``sync-gevent``: websockets' sync client in C greenlets under gevent (no asyncio;
  it could not reuse `WsClient` nor the scenario player).

Printed per option: cycles per second (connect + one application round trip + close),
and round trips per second on one open connection. Figures, not thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time

from reference_process import server_process

SECRET_ENV = "WS_BRIDGE_BENCH_SECRET"


def _users(n: int) -> list[tuple[str, str]]:
    from pytest_ws_resilience.client.tokens import TokenFactory

    tokens = TokenFactory(os.environ[SECRET_ENV])
    return [(u.id, u.token) for u in (tokens.user() for _ in range(n))]


def _settings():  # type: ignore[no-untyped-def]
    from pytest_ws_resilience.config.settings import WsSettings

    return WsSettings(connect_retries=0)


async def _cycle(url: str, user_token: tuple[str, str]) -> None:
    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.tokens import TestUser

    uid, token = user_token
    client = WsClient(url, user=TestUser(uid, f"{uid}@x.test", token), settings=_settings())
    await client.connect()
    await client.send_json({"type": "ping", "n": 1})
    await client.expect(type="pong", n=1)
    await client.close()


async def _asyncio_side(url: str, users: list[tuple[str, str]], c: int, m: int) -> dict:
    import asyncio

    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.tokens import TestUser

    sem = asyncio.Semaphore(c)

    async def one(u: tuple[str, str]) -> None:
        async with sem:
            await _cycle(url, u)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(u) for u in users))
    cycles = len(users) / (time.perf_counter() - t0)
    uid, token = users[0]
    client = WsClient(url, user=TestUser(uid, f"{uid}@x.test", token), settings=_settings())
    await client.connect()
    t0 = time.perf_counter()
    for i in range(m):
        await client.send_json({"type": "ping", "n": i})
        await client.expect(type="pong", n=i)
    rts = m / (time.perf_counter() - t0)
    await client.close()
    return {"cycles_per_s": cycles, "round_trips_per_s": rts}


def _loop_thread_side(url: str, users: list[tuple[str, str]], c: int, m: int, hop: bool) -> dict:
    import gevent
    import gevent.pool
    import locust  # noqa: F401  (monkey-patches the process, as in a Locust worker)

    from pytest_ws_resilience.client.client import WsClient
    from pytest_ws_resilience.client.tokens import TestUser
    from pytest_ws_resilience.locust.bridge import LoopThread

    bridge = LoopThread().start()
    pool = gevent.pool.Pool(c)
    t0 = time.perf_counter()
    for u in users:
        pool.spawn(bridge.run, lambda u=u: _cycle(url, u), timeout=60)
    pool.join()
    cycles = len(users) / (time.perf_counter() - t0)
    uid, token = users[0]
    client = WsClient(url, user=TestUser(uid, f"{uid}@x.test", token), settings=_settings())
    bridge.run(client.connect, timeout=30)

    async def rt(i: int) -> None:
        await client.send_json({"type": "ping", "n": i})
        await client.expect(type="pong", n=i)

    async def all_rts() -> None:
        for i in range(m):
            await rt(i)

    t0 = time.perf_counter()
    if hop:
        for i in range(m):
            bridge.run(lambda i=i: rt(i), timeout=30)
    else:
        bridge.run(all_rts, timeout=120)
    rts = m / (time.perf_counter() - t0)
    bridge.run(client.close, timeout=30)
    bridge.stop()
    return {"cycles_per_s": cycles, "round_trips_per_s": rts}


def _sync_side(url: str, users: list[tuple[str, str]], c: int, m: int) -> dict:
    import gevent.pool
    import locust  # noqa: F401
    from websockets.sync.client import connect

    def open_(token: str):  # type: ignore[no-untyped-def]
        ws = connect(url, subprotocols=["jwt-auth", f"jwt.{token}"], open_timeout=30)
        ws.recv(timeout=10)  # the greeting
        return ws

    def cycle(u: tuple[str, str]) -> None:
        ws = open_(u[1])
        ws.send(json.dumps({"type": "ping", "n": 1}))
        while json.loads(ws.recv(timeout=10)).get("type") != "pong":
            pass
        ws.close()

    pool = gevent.pool.Pool(c)
    t0 = time.perf_counter()
    for u in users:
        pool.spawn(cycle, u)
    pool.join()
    cycles = len(users) / (time.perf_counter() - t0)
    ws = open_(users[0][1])
    t0 = time.perf_counter()
    for i in range(m):
        ws.send(json.dumps({"type": "ping", "n": i}))
        while json.loads(ws.recv(timeout=10)).get("n") != i:
            pass
    rts = m / (time.perf_counter() - t0)
    ws.close()
    return {"cycles_per_s": cycles, "round_trips_per_s": rts}


def _child(option: str, url: str, n: int, c: int, m: int) -> None:
    users = _users(n)
    if option == "asyncio":
        import asyncio

        figures = asyncio.run(_asyncio_side(url, users, c, m))
    elif option in ("loop-thread", "loop-thread-hop"):
        figures = _loop_thread_side(url, users, c, m, hop=option == "loop-thread-hop")
    else:
        figures = _sync_side(url, users, c, m)
    print(json.dumps(figures))


OPTIONS = ("asyncio", "loop-thread", "loop-thread-hop", "sync-gevent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.url, args.cycles, args.concurrency, args.round_trips)
        return
    secret = secrets.token_urlsafe(32)
    os.environ[SECRET_ENV] = secret
    here = os.path.dirname(os.path.abspath(__file__))
    with server_process(SECRET_ENV, secret) as url:
        print(
            f"{args.cycles} cycles (connect + ping/pong + close) at concurrency "
            f"{args.concurrency}; {args.round_trips} round trips on one connection"
        )
        results = {}
        for option in OPTIONS:
            out = subprocess.run(
                [
                    sys.executable,
                    os.path.join(here, "locust_bridge.py"),
                    "--child",
                    option,
                    "--url",
                    url,
                    "--cycles",
                    str(args.cycles),
                    "--concurrency",
                    str(args.concurrency),
                    "--round-trips",
                    str(args.round_trips),
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if out.returncode != 0:
                print(f"{option}: FAILED\n{out.stderr[-2000:]}")
                continue
            results[option] = json.loads(out.stdout.strip().splitlines()[-1])
        base = results.get("asyncio")
        for option, figures in results.items():
            ratio = (
                f"  ({figures['cycles_per_s'] / base['cycles_per_s']:.2f}x cycles, "
                f"{figures['round_trips_per_s'] / base['round_trips_per_s']:.2f}x round trips "
                "of plain asyncio)"
                if base
                else ""
            )
            print(
                f"{option:>16}: {figures['cycles_per_s']:8.0f} cycles/s "
                f"{figures['round_trips_per_s']:8.0f} round trips/s{ratio}"
            )


if __name__ == "__main__":
    main()
