"""WebSocket routes: ``ws/chat/<room_name>/``, as in the tutorial."""

from django.urls import re_path

from chat import consumers

__all__ = ["websocket_urlpatterns"]

websocket_urlpatterns = [
    re_path(r"ws/chat/(?P<room_name>\w+)/$", consumers.ChatConsumer.as_asgi()),
]
