"""An isolation violation and the report a failing test prints.

Pure, no I/O. A violation is what a user reads when a test fails, so it names who
received what from whom, in one line, and shows only what is safe to show: tokens and
secrets are replaced by their length, every frame and marker is redacted and truncated
(a leaked frame may hold anything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_ws_resilience.isolation.frames import frame_text
from pytest_ws_resilience.isolation.markers import SECRET_KINDS
from pytest_ws_resilience.redaction import REDACTED, redact, secret_repr

__all__ = ["IsolationViolation", "format_report", "show_frame", "show_marker"]

# How much of a frame / a marker a violation shows.
_FRAME_CHARS = 300
_MARKER_CHARS = 80


@dataclass(frozen=True)
class IsolationViolation:
    """One frame received by ``receiver`` holding a marker owned by ``owner``.

    Attributes:
        receiver: id of the user who received the frame.
        receiver_connection: which connection: the client's name and connection id.
        owner: id of the user the marker belongs to.
        marker_kind: ``id``, ``email``, ``sub``, ``token``, ``taint``, ``canary``,
            ``registered`` or a kind given to `IsolationDetector.register`.
        marker: the marker as shown: redacted for tokens and secrets, truncated.
        frame: the frame, redacted and truncated.
        frame_index: the frame's index in the receiver's event log.
        received_at: ``time.monotonic()`` at receipt.
    """

    receiver: str
    receiver_connection: str
    owner: str
    marker_kind: str
    marker: str
    frame: str
    frame_index: int
    received_at: float

    def __str__(self) -> str:
        return (
            f"{self.receiver} (connection {self.receiver_connection}) received a frame "
            f"holding {self.owner}'s {self.marker_kind} marker {self.marker} "
            f"(frame #{self.frame_index}): {self.frame}"
        )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_marker(marker: str, kind: str) -> str:
    """A marker as a violation shows it: a secret kind by its length only, any other
    redacted, truncated and quoted."""
    if kind in SECRET_KINDS:
        return secret_repr(marker)
    return repr(_shorten(redact(marker), _MARKER_CHARS))


def show_frame(raw: str | bytes, marker: str, kind: str) -> str:
    """A frame as a violation shows it: redacted (the marker too, when it is a secret
    kind) and truncated."""
    text = redact(frame_text(raw))
    if kind in SECRET_KINDS:
        text = text.replace(marker, REDACTED)
    return _shorten(text, _FRAME_CHARS)


def format_report(
    violations: Sequence[IsolationViolation],
    *,
    dropped: int,
    checks: int,
    markers: int,
    users: int,
) -> str:
    """Every violation, grouped by owner and receiver; one line when clean.

    Args:
        violations: the violations kept, in the order found.
        dropped: violations found beyond those kept (only counted).
        checks: frames scanned.
        markers: marker texts indexed.
        users: users tracked.
    """
    total = len(violations) + dropped
    if not total:
        return (
            f"no isolation violations ({checks} frames checked, {markers} markers, {users} users)"
        )
    groups: dict[tuple[str, str], list[IsolationViolation]] = {}
    for violation in violations:
        groups.setdefault((violation.owner, violation.receiver), []).append(violation)
    plural = "s" if total > 1 else ""
    lines = [
        f"{total} isolation violation{plural}: data of one user reached another "
        f"({checks} frames checked, {markers} markers)"
    ]
    for (owner, receiver), found in groups.items():
        lines.append(f"{owner}'s data reached {receiver} ({len(found)}):")
        lines.extend(f"  - {violation}" for violation in found)
    if dropped:
        lines.append(f"... and {dropped} more (max_violations reached)")
    return "\n".join(lines)
