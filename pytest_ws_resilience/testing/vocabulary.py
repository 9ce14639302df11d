"""The reference server's vocabulary: its message types, error codes and agent contract.

Pure constants, no I/O. The protocol of the reference server is written here once:
the server (`server.py`), the simulated agent (`agent.py`) and the tests, examples and
docs that talk to it name a message by these constants, and `AGENT_EVENTS` states what
an agent run must emit. The generic layers (`contracts`, `isolation`, the client) know
none of it: they take field and event names from their caller, so they fit any server.

Every frame is a JSON object whose ``type`` field names the message.
"""

from __future__ import annotations

from pytest_ws_resilience.contracts.contract import EventContract

__all__ = [
    "AGENT_COMPLETED",
    "AGENT_EVENTS",
    "AGENT_EVENT_TYPES",
    "AGENT_STARTED",
    "AGENT_THINKING",
    "CONNECTION_ESTABLISHED",
    "ERROR",
    "GET_HISTORY",
    "HISTORY",
    "INVALID_JSON",
    "INVALID_MESSAGE",
    "JOIN",
    "JOINED",
    "LEAVE",
    "LEFT",
    "NOT_A_MEMBER",
    "PING",
    "PONG",
    "POST",
    "RESUME",
    "RESUMED",
    "ROOM_EVENT",
    "TOOL_COMPLETED",
    "TOOL_EXECUTING",
    "UNKNOWN_TYPE",
    "UNSUPPORTED_BINARY",
    "USER_MESSAGE",
    "error_frame",
]

# -- what a client sends -------------------------------------------------------------

#: Asks the agent (``text``, optional ``run_id`` and ``thread_id``): starts an agent run.
USER_MESSAGE = "user_message"
#: Asks for the user's thread ids, or one thread's messages (``thread_id``).
GET_HISTORY = "get_history"
#: An application-level ping; answered by `PONG` echoing its other fields.
PING = "ping"
#: Joins a room (``room``: a non-empty string); answered by `JOINED`.
JOIN = "join"
#: Leaves a room (``room``); answered by `LEFT`, or the `NOT_A_MEMBER` error.
LEAVE = "leave"
#: Posts ``value`` (a JSON scalar) to a room the sender is in: every member, the sender
#: too, receives it as a `ROOM_EVENT`.
POST = "post"
#: Joins a room and asks for its kept events with ``room_seq > after``; they come as
#: `ROOM_EVENT` frames, then `RESUMED`.
RESUME = "resume"

# -- what the server sends -----------------------------------------------------------

#: The first frame of every connection: ``connection_id``, ``user_id``, ``recv_timeout``,
#: ``auth_method``.
CONNECTION_ESTABLISHED = "connection_established"
#: The answer to `GET_HISTORY`.
HISTORY = "history"
#: The answer to `PING`.
PONG = "pong"
#: A refused frame (``code``, ``message``); the connection stays open.
ERROR = "error"
#: The answer to `JOIN`, and the second frame on a ``/rooms/<room>`` path: ``room``,
#: ``head`` (the room's last ``room_seq``, 0 for a new room).
JOINED = "joined"
#: The answer to `LEAVE`: ``room``.
LEFT = "left"
#: One event of a room, to each member: ``room``, ``room_seq`` (1, 2, 3, ... per room),
#: ``value``; no user or connection id.
ROOM_EVENT = "room_event"
#: The end of a `RESUME` replay: ``room``, ``head``, ``replayed`` (events sent).
RESUMED = "resumed"

# The events of an agent run, in their correct order, sent to every connection of the
# user; each carries ``run_id``, ``thread_id`` and ``user_id``.
#: A run began (``input``: the user's text).
AGENT_STARTED = "agent_started"
#: One thinking step (``step``, ``thought``), repeated ``thinking_steps`` times.
AGENT_THINKING = "agent_thinking"
#: The agent calls its tool (``tool``, ``args``).
TOOL_EXECUTING = "tool_executing"
#: The tool answered (``tool``, ``output``).
TOOL_COMPLETED = "tool_completed"
#: The run's terminal event (``result``).
AGENT_COMPLETED = "agent_completed"

#: The event types of one run, in their correct order (thinking may repeat).
AGENT_EVENT_TYPES = (AGENT_STARTED, AGENT_THINKING, TOOL_EXECUTING, TOOL_COMPLETED, AGENT_COMPLETED)

# -- the ``code`` of an `ERROR` frame ------------------------------------------------

#: A text frame that is not JSON.
INVALID_JSON = "invalid_json"
#: JSON that is not an object, or a known type with bad fields.
INVALID_MESSAGE = "invalid_message"
#: A ``type`` the server does not know.
UNKNOWN_TYPE = "unknown_type"
#: A binary frame: the server speaks JSON text only.
UNSUPPORTED_BINARY = "unsupported_binary"
#: A `LEAVE` or `POST` naming a room the connection is not in.
NOT_A_MEMBER = "not_a_member"


def error_frame(code: str, message: str) -> dict[str, str]:
    """The `ERROR` payload refusing a frame with ``code`` (one of the codes above)."""
    return {"type": ERROR, "code": code, "message": message}


#: The reference server's agent run: started, thinking (repeats), tool executing and
#: completed, agent completed; runs told apart by ``run_id``.
AGENT_EVENTS = EventContract(
    events=AGENT_EVENT_TYPES,
    field="type",
    correlation="run_id",
    terminal=AGENT_COMPLETED,
    repeatable=frozenset({AGENT_THINKING}),
    name="AGENT_EVENTS",
)
