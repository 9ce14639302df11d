"""What fuzzing found in the reference server stays fixed: valid JSON that Python
cannot decode (nested past the recursion limit, an integer past the int/str digit
limit) gets an ``invalid_json`` error frame, and the connection stays up (it was a
dropped connection: the handler raised)."""

from __future__ import annotations

import pytest

from pytest_ws_resilience import FuzzFrame
from pytest_ws_resilience.fuzz.frames import RawJson
from pytest_ws_resilience.fuzz.fuzzer import WsFuzz
from pytest_ws_resilience.fuzz.mutations import nested


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "value",
    [
        nested(3000, "list"),
        nested(3000, "object"),
        RawJson("1" * 5000, "an integer of 5000 digits"),
    ],
    ids=["lists", "objects", "digits"],
)
async def test_undecodable_json_gets_an_error_frame(ws_fuzz: WsFuzz, value: RawJson) -> None:
    frame = FuzzFrame("json", {"type": "ping", "nonce": value})

    assert await ws_fuzz.replay(frame) is None
    client = ws_fuzz.client
    assert client is not None and not client.closed
    error = next(e for e in client.events if e.get("type") == "error")
    assert error["code"] == "invalid_json" and "undecodable JSON" in error["message"]
