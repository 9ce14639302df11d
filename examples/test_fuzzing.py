"""Fuzzing the server with the messages a client already sends.

``ws_fuzz`` mutates each example (wrong types, missing and extra fields, empty, very
long, unicode and lone-surrogate strings, deep nesting, huge numbers, binary and
non-JSON frames), sends every variant over a real authenticated connection and checks
that the server answers (an error frame counts), keeps the connection open and still
answers a ping afterwards. A failure prints the minimal message Hypothesis shrank it to
and the seed that replays the search. See docs/fuzzing.md.
"""

import pytest

# What this client sends the reference server (SPEC section 2).
MESSAGES = [
    {"type": "ping", "nonce": 1},
    {"type": "user_message", "text": "What is the weather in Lisbon?", "thread_id": "t-1"},
    {"type": "get_history", "thread_id": "t-1"},
    {"type": "join", "room": "lobby"},
    {"type": "post", "room": "lobby", "value": {"text": "hi"}},
]


@pytest.mark.asyncio
@pytest.mark.websocket_resilience
async def test_the_server_survives_fuzzed_messages(ws_fuzz):
    result = await ws_fuzz(examples=MESSAGES)

    result.assert_ok()  # on failure: the minimal message, the broken property, the seed
    assert result.examples_run >= 100


MESSAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"const": "user_message"},
        "text": {"type": "string"},
        "thread_id": {"type": "string", "minLength": 1},
    },
    "required": ["type", "text"],
}


@pytest.mark.asyncio
@pytest.mark.websocket_resilience
async def test_the_server_survives_messages_drawn_from_a_schema(ws_fuzz):
    # A JSON Schema of the messages (needs the extra: pytest-ws-resilience[schema]).
    result = await ws_fuzz(schema=MESSAGE_SCHEMA, max_examples=200)

    result.assert_ok()
