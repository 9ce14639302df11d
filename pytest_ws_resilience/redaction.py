"""The one redaction function: tokens and keys never reach output.

Secrets are registered as they are created (every minted token, every configured key)
and `redact` replaces them wherever text leaves the package: reprs, error messages,
log records and pytest reports. Anything shaped like a JWT is redacted too, so a token
minted by someone else's code does not slip through.
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "redact",
    "register_secret",
    "registered_secret_count",
    "secret_repr",
]

REDACTED = "<redacted>"

# Three base64url segments, the first one a JSON object header ("eyJ" = '{"').
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
# Secrets shorter than this are not registered: redacting "ok" everywhere helps nobody.
_MIN_SECRET_LEN = 6

_lock = threading.Lock()
_secrets: set[str] = set()
# Compiled lazily by `redact` after the set changed: registering stays O(1), so minting
# thousands of tokens does not recompile a growing pattern each time.
_pattern: re.Pattern[str] | None = None
_dirty = False


def register_secret(value: str | bytes | None) -> None:
    """Remember ``value`` so `redact` hides it from now on (thread-safe, idempotent).

    JWTs need no registration: `redact` recognises their shape.
    """
    global _dirty
    if value is None:
        return
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    variants = {text}
    # PEM keys are multi-line: hide every substantial line of them as well.
    if "\n" in text:
        variants.update(line.strip() for line in text.splitlines())
    variants = {
        v
        for v in variants
        if len(v) >= _MIN_SECRET_LEN and not v.startswith("-----") and not _JWT_RE.fullmatch(v)
    }
    with _lock:
        if variants <= _secrets:
            return
        _secrets.update(variants)
        _dirty = True


def registered_secret_count() -> int:
    return len(_secrets)


def _current_pattern() -> re.Pattern[str] | None:
    global _pattern, _dirty
    if _dirty:
        with _lock:
            if _dirty:
                ordered = sorted(_secrets, key=len, reverse=True)
                _pattern = re.compile("|".join(re.escape(s) for s in ordered))
                _dirty = False
    return _pattern


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and JWT-shaped string replaced."""
    if not text:
        return text
    pattern = _current_pattern()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _JWT_RE.sub(REDACTED, text)


def secret_repr(value: str | None) -> str:
    """How a secret shows in a repr: its presence and length, never its content."""
    if value is None:
        return "None"
    return f"<redacted {len(value)} chars>"


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
