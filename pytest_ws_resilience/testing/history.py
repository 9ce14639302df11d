"""Per-user conversation history of the reference server (pure, in memory).

History is keyed by user first, so one user can never read another's threads, and
it outlives connections, so a client that reconnects as the same user finds its
context again (unless the ``lose_history`` fault wipes it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["HistoryStore", "Message"]

#: Oldest messages of a thread are forgotten past this, so a long benchmark stays bounded.
MAX_MESSAGES_PER_THREAD = 1000


@dataclass(frozen=True)
class Message:
    """One entry of a thread: who said it, what, and in which agent run."""

    role: str  # "user" or "agent"
    text: str
    run_id: str

    def as_json(self) -> dict[str, Any]:
        return {"role": self.role, "text": self.text, "run_id": self.run_id}


class HistoryStore:
    """Threads of messages, per user.

    Args:
        max_messages_per_thread: bound of each thread (oldest dropped first).
    """

    def __init__(self, max_messages_per_thread: int = MAX_MESSAGES_PER_THREAD) -> None:
        self._max = max_messages_per_thread
        self._users: dict[str, dict[str, deque[Message]]] = {}

    def append(self, user_id: str, thread_id: str, message: Message) -> None:
        """Add ``message`` to ``user_id``'s thread ``thread_id`` (created on first use)."""
        threads = self._users.setdefault(user_id, {})
        thread = threads.get(thread_id)
        if thread is None:
            thread = threads[thread_id] = deque(maxlen=self._max)
        thread.append(message)

    def messages(self, user_id: str, thread_id: str) -> list[Message]:
        """The messages of one of ``user_id``'s threads, oldest first ([] if unknown)."""
        return list(self._users.get(user_id, {}).get(thread_id, ()))

    def threads(self, user_id: str) -> list[str]:
        """``user_id``'s thread ids, in order of creation."""
        return list(self._users.get(user_id, {}))

    def forget(self, user_id: str) -> None:
        """Drop everything ``user_id`` said (the ``lose_history`` fault)."""
        self._users.pop(user_id, None)

    def clear(self) -> None:
        self._users.clear()

    def __len__(self) -> int:
        """Number of users with any history."""
        return len(self._users)
