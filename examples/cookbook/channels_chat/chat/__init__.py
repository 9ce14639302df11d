"""The tutorial's ``chat`` app: one WebSocket consumer, rooms as channel-layer groups."""

__all__: list[str] = []
