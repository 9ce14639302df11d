"""The tutorial's ``ChatConsumer``: every message goes to the sender's room, and only there.

Protocol (JSON text frames): a client sends ``{"message": "..."}``; everyone in the
room, the sender included, receives ``{"message": "..."}``. The room is the URL's
``room_name``; its group on the channel layer is ``chat_<room_name>``.

``CHAT_BROKEN=1`` in the environment (read at each message, so a running server can be
switched) injects the bug the cookbook's isolation tests exist for: the message is sent
to every room this process has seen, not only the sender's.
"""

import json
import os

from channels.generic.websocket import AsyncWebsocketConsumer

__all__ = ["BROKEN_ENV", "ChatConsumer", "rooms_for"]

BROKEN_ENV = "CHAT_BROKEN"
"""Set to ``1`` to broadcast every message to every room (the deliberate leak)."""

# Every group a consumer of this process has joined: only the broken variant reads it.
_KNOWN_GROUPS: set[str] = set()


def rooms_for(group: str) -> list[str]:
    """The groups a message sent in ``group`` goes to: that one (or all, when broken)."""
    if os.environ.get(BROKEN_ENV) == "1":
        return sorted(_KNOWN_GROUPS | {group})
    return [group]


class ChatConsumer(AsyncWebsocketConsumer):
    """Joins the room's group on connect, relays each message to the group."""

    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        _KNOWN_GROUPS.add(self.room_group_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = json.loads(text_data or "{}").get("message", "")
        for group in rooms_for(self.room_group_name):
            await self.channel_layer.group_send(group, {"type": "chat.message", "message": message})

    async def chat_message(self, event: dict[str, str]) -> None:
        """A message of the group: to this consumer's client."""
        await self.send(text_data=json.dumps({"message": event["message"]}))
