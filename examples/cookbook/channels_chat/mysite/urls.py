"""No HTTP pages: the chat is WebSocket only (see ``chat.routing``)."""

from django.urls import URLPattern

__all__ = ["urlpatterns"]

urlpatterns: list[URLPattern] = []
