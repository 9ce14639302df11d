"""A plain ``websockets`` game server over real sockets: moves, turns, games apart.

The plugin starts ``game_server.py`` as the ``game`` service (pyproject.toml), or the
tests use the server at ``--ws-url``; ``game_url`` (conftest.py) says which. Moves are
integers, so there is no user text to taint: what must never cross from one game to
another is the game itself, its key, which the test registers as the creator's marker.
"""

import asyncio

import pytest


async def new_game(ws_client_factory, game_url):
    """Red starts a game and yellow joins it: (red, yellow, key)."""
    red = await ws_client_factory(url=game_url)
    await red.send_json({"type": "init"})
    key = (await red.expect(type="init", player="red"))["join"]
    yellow = await ws_client_factory(url=game_url)
    await yellow.send_json({"type": "join", "join": key})
    await yellow.expect(type="init", player="yellow", join=key)
    return red, yellow, key


async def play(game, player, column):
    """``player`` drops a disc in ``column`` of ``game``; both players see it; return it."""
    red, yellow, key = game
    await player.send_json({"type": "play", "column": column})
    seen = await asyncio.gather(
        *(watcher.expect(type="play", game=key, column=column) for watcher in (red, yellow))
    )
    assert all(move == seen[0] for move in seen)  # one move, the same event for all
    return seen[0]


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_both_players_see_every_move_in_turn(ws_client_factory, game_url):
    game = red, yellow, key = await new_game(ws_client_factory, game_url)

    first = await play(game, red, 3)
    second = await play(game, yellow, 3)
    third = await play(game, red, 4)

    assert [(m["player"], m["column"], m["row"]) for m in (first, second, third)] == [
        ("red", 3, 0),
        ("yellow", 3, 1),  # stacked on red's disc
        ("red", 4, 0),
    ]
    assert [m["move"] for m in (first, second, third)] == [1, 2, 3]
    assert {m["game"] for m in (first, second, third)} == {key}


@pytest.mark.asyncio
@pytest.mark.websocket_integration
async def test_bad_moves_are_refused_and_the_game_goes_on(ws_client_factory, game_url):
    game = red, yellow, _ = await new_game(ws_client_factory, game_url)

    await yellow.send_json({"type": "play", "column": 0})
    assert "not your turn" in (await yellow.expect(type="error"))["message"]
    for column in (7, -1, "3", None):
        await red.send_json({"type": "play", "column": column})
        assert "integer" in (await red.expect(type="error"))["message"]
    await red.send_text("not json")
    await red.expect(type="error")

    await play(game, red, 0)  # still red's turn, still open


@pytest.mark.asyncio
@pytest.mark.websocket_security(taint=False)  # moves are integers: no text to taint
async def test_moves_never_reach_another_game(ws_client_factory, game_url, ws_isolation):
    games = [await new_game(ws_client_factory, game_url) for _ in range(2)]
    for red, _, key in games:
        # The key of a game belongs to its players: seen by anyone else, it is a leak
        # (yellow sent it to join, so it is never a violation for yellow).
        ws_isolation.register(red.user, key)

    for column in range(3):
        for game in games:
            red, yellow, _ = game
            await play(game, red, column)
            await play(game, yellow, column)

    assert ws_isolation.checks > 0
