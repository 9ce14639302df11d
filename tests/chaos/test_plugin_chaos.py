"""ws_chaos as users use it: proxies in front of ws_server, seeds printed and replayed."""

import json
import re

import pytest

pytestmark = pytest.mark.websocket_resilience

RANDOM_LOSS_TEST = """
import json
import pytest

@pytest.mark.asyncio
async def test_lossy(ws_chaos, ws_client_factory):
    proxy = await ws_chaos()
    proxy.add_message_fault(
        "drop", toxicity=0.3, select=lambda m: m.index > 1 and b"flush" not in m.payload
    )
    client = await ws_client_factory(url=proxy.url)
    for n in range(30):
        await client.send_json({{"type": "ping", "n": n}})
    await client.send_json({{"type": "ping", "flush": True}})
    await client.expect(type="pong", flush=True)  # answered in order: all others passed
    with open({record!r}, "a") as fh:
        fh.write(json.dumps([d.outcome for d in proxy.decisions]) + "\\n")
    assert False, "fail on purpose, to see the seed"
"""


def run_lossy(pytester, record, *args):
    pytester.makepyfile(test_lossy=RANDOM_LOSS_TEST.format(record=str(record)))
    return pytester.runpytest("-p", "ws_resilience", *args)


def test_a_failing_chaos_test_prints_the_seed_that_replays_it(ws_pytester, tmp_path):
    record = tmp_path / "decisions.jsonl"
    first = run_lossy(ws_pytester, record)
    first.assert_outcomes(failed=1)
    hint = re.search(r"replay with: pytest --ws-chaos-seed=(\d+)", first.stdout.str())
    assert hint, first.stdout.str()

    replay = run_lossy(ws_pytester, record, f"--ws-chaos-seed={hint.group(1)}")
    replay.assert_outcomes(failed=1)
    other = run_lossy(ws_pytester, record, f"--ws-chaos-seed={int(hint.group(1)) + 1}")
    other.assert_outcomes(failed=1)

    original, replayed, different = (json.loads(line) for line in record.read_text().splitlines())
    assert "dropped" in original
    assert replayed == original
    assert different != original


def test_the_header_shows_the_chaos_seed(ws_pytester):
    ws_pytester.makepyfile("def test_nothing(): pass")
    result = ws_pytester.runpytest("-p", "ws_resilience", "--ws-chaos-seed=1234")
    result.stdout.fnmatch_lines(["ws-resilience chaos seed: 1234 (--ws-chaos-seed)"])


def test_a_non_integer_seed_is_a_usage_error(ws_pytester):
    ws_pytester.makepyfile("def test_nothing(): pass")
    result = ws_pytester.runpytest("-p", "ws_resilience", "--ws-chaos-seed=soon")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--ws-chaos-seed*invalid int value*"])


def test_presets_and_teardown(ws_pytester):
    ws_pytester.makepyfile(
        """
        import pytest

        PROXIES = []

        @pytest.mark.asyncio
        async def test_preset(ws_chaos, ws_client_factory):
            proxy = await ws_chaos(preset="4g")
            PROXIES.append(proxy)
            assert {t.kind for t in proxy.toxics} == {"latency", "bandwidth"}
            client = await ws_client_factory(url=proxy.url)
            await client.send_json({"type": "ping"})
            await client.expect(type="pong")

        @pytest.mark.asyncio
        async def test_unknown_preset(ws_chaos):
            with pytest.raises(ValueError, match="unknown chaos preset 'dialup'.*3g"):
                await ws_chaos(preset="dialup")

        def test_proxies_were_stopped():
            import socket
            assert PROXIES and not PROXIES[0].connections
            with pytest.raises(ConnectionRefusedError):  # its listener is closed
                socket.create_connection(("127.0.0.1", PROXIES[0].port), timeout=2)
        """
    )
    ws_pytester.runpytest("-p", "ws_resilience").assert_outcomes(passed=3)
