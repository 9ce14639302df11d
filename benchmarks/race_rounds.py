"""How many rounds ``ws_isolation.race`` needs to catch the reference server's join race.

Usage: ``python benchmarks/race_rounds.py [--users 20] [--seeds 20] [--rounds 50]
[--jitter 0.005 ...] [--join-delay 0.005] [--detect action|scope]``

The embedded reference server runs with the ``join_race`` fault (a join keeps its
connection in one server-wide slot for ``join_delay_s``, 5 ms by default: two joins in
that window put the second joiner in both rooms and the first in none). For each jitter
and each of ``--seeds`` seeds (0, 1, 2, ...), ``race`` releases ``--users`` fresh
clients' connects, then their action (join a room of its own, post, see its own post),
each client after its seeded delay in ``[0, jitter]``, round after round, until a round
catches it (the first joiner never sees its post: its action fails). With ``--detect
scope`` the users share 4 rooms, the action only joins and posts, and a scope rule finds
the frame a second joiner got from a room it never joined: no check by hand. Prints each
seed's
rounds and the median per jitter (a seed not caught within ``--rounds`` counts as
``--rounds`` and is marked). The guard, the runner and the release are the ones the
plugin uses; only the client source is built here, outside pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_ws_resilience.client.client import WsClient
from pytest_ws_resilience.client.closing import close_clients
from pytest_ws_resilience.client.tokens import TestUser, TokenFactory
from pytest_ws_resilience.config.settings import WsSettings
from pytest_ws_resilience.config.timeouts import TimeoutValue
from pytest_ws_resilience.isolation.detector import IsolationDetector
from pytest_ws_resilience.isolation.guard import IsolationGuard
from pytest_ws_resilience.testing import EmbeddedServer, ServerConfig

__all__ = ["main"]


class _Clients:
    """A `ClientSource` outside pytest: fresh users, the embedded server, short waits."""

    def __init__(self, url: str, tokens: TokenFactory, settings: WsSettings) -> None:
        self._url, self._tokens, self._settings = url, tokens, settings
        #: The guard whose detector and rules watch every client made (as the plugin's
        #: watch does); None: nothing watches them.
        self.guard: IsolationGuard | None = None

    @property
    def settings(self) -> WsSettings:
        return self._settings

    def new_user(self) -> TestUser:
        return self._tokens.user()

    def make(self, user: TestUser, options: Mapping[str, Any]) -> WsClient:
        client = WsClient(self._url, user=user, settings=self._settings, ping_interval=None)
        if self.guard is not None:
            self.guard.detector.attach(client)
            for rule in self.guard.rules:
                client.add_observer(rule)
        return client

    async def retire(self, clients: Sequence[WsClient]) -> None:
        await close_clients(clients, self._settings.close_timeout.value + 1.0)


async def join_and_post(client: WsClient, index: int) -> None:
    room = f"room-{index}"
    await client.send_json({"type": "join", "room": room})
    await client.expect(type="joined", room=room)
    await client.send_json({"type": "post", "room": room, "value": 7})
    await client.expect(type="room_event", room=room)


async def join_shared_room_and_post(client: WsClient, index: int) -> None:
    """Five users per room; nothing checked by hand: the scope rule judges the frames."""
    room = f"shared-{index % 4}"
    await client.send_json({"type": "join", "room": room})
    await client.expect(type="joined", room=room)
    await client.send_json({"type": "post", "room": room, "value": index})


async def _rounds_to_catch(
    source: _Clients, args: argparse.Namespace, jitter: float, seed: int
) -> int | None:
    guard = IsolationGuard(IsolationDetector())
    guard.provide_clients(source)
    guard.expect_violations()
    action = join_and_post
    if args.detect == "scope":
        guard.scope("room", join={"type": "join"}, leave={"type": "left"})
        source.guard = guard
        action = join_shared_room_and_post
    result = await guard.race(action, args.users, rounds=args.rounds, seed=seed, jitter=jitter)
    return result.failing_round.number if result.failing_round is not None else None


async def _run(url: str, tokens: TokenFactory, args: argparse.Namespace) -> None:
    settings = WsSettings(
        recv_timeout=TimeoutValue(args.recv_timeout, "benchmark"),
        close_timeout=TimeoutValue(args.recv_timeout + 2, "benchmark"),
    )
    source = _Clients(url, tokens, settings)
    for jitter in args.jitter:
        counts: list[int] = []
        line: list[str] = []
        started = time.perf_counter()
        for seed in range(args.seeds):
            caught = await _rounds_to_catch(source, args, jitter, seed)
            counts.append(caught if caught is not None else args.rounds)
            line.append(f"{seed}:{caught if caught is not None else str(args.rounds) + '+'}")
        print(
            f"jitter {jitter * 1000:6.1f} ms: median {statistics.median(counts):g} round(s), "
            f"max {max(counts)}, mean {statistics.fmean(counts):.2f} "
            f"({time.perf_counter() - started:.1f} s)\n    seed:rounds {' '.join(line)}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50, help="most rounds per seed")
    parser.add_argument(
        "--jitter", type=float, nargs="+", default=[0.0, 0.005, 0.02, 0.1], help="seconds"
    )
    parser.add_argument("--join-delay", type=float, default=0.005, help="the race window, s")
    parser.add_argument("--recv-timeout", type=float, default=1.0, help="an action's wait, s")
    parser.add_argument(
        "--detect",
        choices=("action", "scope"),
        default="action",
        help="action: the first joiner never sees its own post (its wait fails); scope: "
        "users share 4 rooms and a scope rule sees a frame of a room not joined",
    )
    args = parser.parse_args(argv)
    tokens = TokenFactory()
    config = ServerConfig(
        secret=tokens.secret,
        ping_interval=None,
        faults=frozenset({"join_race"}),
        join_delay_s=args.join_delay,
    )
    with EmbeddedServer(config) as server:
        print(
            f"server {server.url} (join_race, window {args.join_delay * 1000:g} ms); "
            f"{args.users} users, {args.seeds} seeds, at most {args.rounds} rounds, "
            f"detected by {args.detect}"
        )
        asyncio.run(_run(server.url, tokens, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
