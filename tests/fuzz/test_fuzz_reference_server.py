"""What fuzzing found in the reference server stays fixed: valid JSON that Python
cannot decode (nested past the decoder's depth, an integer past the int/str digit
limit) gets an ``invalid_json`` error frame, and the connection stays up (it was a
dropped connection: the handler raised)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from json_depth import decoder_depth_limit, undecodable_integer

from pytest_ws_resilience import FuzzFrame
from pytest_ws_resilience.fuzz.frames import RawJson
from pytest_ws_resilience.fuzz.fuzzer import WsFuzz
from pytest_ws_resilience.fuzz.mutations import nested


def _digits() -> RawJson:
    text = undecodable_integer(700)
    return RawJson(text, f"an integer of {len(text)} digits")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "make",
    [
        # Twice the depth this Python decodes: the limit moves with the version.
        lambda: nested(2 * decoder_depth_limit(), "list"),
        lambda: nested(2 * decoder_depth_limit(), "object"),
        _digits,
    ],
    ids=["lists", "objects", "digits"],
)
async def test_undecodable_json_gets_an_error_frame(
    ws_fuzz: WsFuzz, make: Callable[[], RawJson]
) -> None:
    frame = FuzzFrame("json", {"type": "ping", "nonce": make()})

    assert await ws_fuzz.replay(frame) is None
    client = ws_fuzz.client
    assert client is not None and not client.closed
    error = next(e for e in client.events if e.get("type") == "error")
    assert error["code"] == "invalid_json" and "undecodable JSON" in error["message"]
