"""The one redaction function: tokens, keys and URL passwords never reach output.

Secrets are registered as they are created (every minted token, every configured key)
and `redact` replaces them wherever text leaves the package: reprs, error messages,
log records and pytest reports. What it hides, in this order:

- the password of a URL's userinfo (``ws://alice:<redacted>@host``), registered or not;
- every registered secret, whole;
- anything shaped like a JWT, so a token minted by someone else's code does not slip
  through;
- the pieces of a registered secret that survive a cut: pytest shortens long values
  (``saferepr`` keeps a head and a tail around ``...``, a diff skips the identical
  leading characters, the short summary cuts at the terminal's width) after the text
  was built, so a token may reach us in parts. Every registered secret's segments (its
  runs of base64url characters of at least 16, for a JWT its payload and signature; the
  header says only the algorithm and is no secret) are remembered, and any run of text
  that is one of them, or a head or a tail of one of at least 8 characters, is hidden.
"""

from __future__ import annotations

import bisect
import logging
import re
import string
import threading

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "redact",
    "register_secret",
    "register_token",
    "registered_secret_count",
    "secret_repr",
]

REDACTED = "<redacted>"

# Three base64url segments, the first one a JSON object header ("eyJ" = '{"'). A dot
# followed by another dot is an ellipsis, not a separator: a cut token is left to the
# cut rules below rather than half-redacted with its ellipsis eaten.
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.(?!\.)[A-Za-z0-9_-]*\.(?!\.)[A-Za-z0-9_-]*")
# The head of a JWT cut by an ellipsis (``eyJhbGciOiJI...``), registered or not.
_CUT_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*){0,2}(?=\.\.\.|\u2026)")
# The password of a URL's userinfo: ``scheme://user:PASSWORD@``. The password runs to
# the last ``@`` before the host, as `urllib.parse.urlsplit` reads it.
_USERINFO_RE = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:'\"<>]*:)[^\s/?#'\"<>]+@")
# Secrets shorter than this are not registered: redacting "ok" everywhere helps nobody.
_MIN_SECRET_LEN = 6
# A secret's segments shorter than this are not remembered on their own.
_MIN_SEGMENT_LEN = 16
# The shortest head or tail of a segment that is hidden: 7 characters of a signature
# tell nothing, and shorter runs would hide ordinary words.
_MIN_PIECE_LEN = 8
# A run of base64url text that could be a piece; an escape such as the ``\n`` of a repr
# is matched first and kept, so the line after it is a run of its own.
_RUN_RE = re.compile(rf"\\[nrt]|[A-Za-z0-9_-]{{{_MIN_PIECE_LEN},}}")
# A `bytes.translate` table that turns every byte outside a run into a space (the bytes
# of a non-ASCII character too: none is a run character).
_RUN_BYTES = bytes(
    b if chr(b) in string.ascii_letters + string.digits + "_-" else 32 for b in range(256)
)


def _runs(text: str) -> list[bytes]:
    """``text``'s runs of base64url characters (``[A-Za-z0-9_-]``), as ASCII bytes, cut
    at C speed: the one cut for a secret's segments and for a text's pieces."""
    return text.encode("utf-8", "replace").translate(_RUN_BYTES).split()


_lock = threading.Lock()
_secrets: set[str] = set()
# Compiled lazily by `redact` after the set changed: registering stays O(1), so minting
# thousands of tokens does not recompile a growing pattern each time.
_pattern: re.Pattern[str] | None = None
_dirty = False
# The segments of every registered secret (JWTs included), and two sorted views of them
# for a head (prefix) or tail (suffix) lookup by bisection: O(log n) per run of text
# however many tokens were minted. Registering only adds to the set (O(1): a storm mints
# thousands of tokens); the views are rebuilt on the next lookup after a change, which
# is rare (only a text that may hold a piece looks). They are replaced, never changed
# in place, so a lookup reads them without the lock.
_segments: set[str] = set()
_heads: list[str] = []
_tails: list[str] = []  # each segment reversed
_views_dirty = False
# Values registered before, as given: registering one again (every client registers its
# user's token, minted and registered already) is a set lookup.
_registered: set[str] = set()
# Values registered and not yet split into the sets above (`_take_pending`): the next
# `redact` splits them.
_pending: list[str] = []
# Tokens this package minted (`register_token`), not yet split: only a text that could
# hold a piece of one has them split first (`_may_hold_a_token_piece`). A whole token is
# hidden by its shape without them, and most minted tokens are never printed.
_pending_tokens: list[str] = []
# The first and the last 8 characters of every segment: the fast test's keys.
_head_keys: set[bytes] = set()
_tail_keys: set[bytes] = set()


def _is_jwt(text: str) -> bool:
    """``text`` is shaped like a JWT as a whole (`redact` hides it by its shape)."""
    return text.startswith("eyJ") and _JWT_RE.fullmatch(text) is not None


def _secret_segments(text: str, is_jwt: bool) -> set[str]:
    """The segments of a secret to remember: its base64url runs of 16 characters or
    more, except a JWT's header (public: the algorithm and the type).

    The runs are cut by `_runs` (bytes methods), not by a regex's passes over the text:
    every minted token that may be needed is split once."""
    runs = [run.decode("ascii") for run in _runs(text) if len(run) >= _MIN_SEGMENT_LEN]
    if runs and is_jwt and text.startswith(runs[0] + "."):
        runs = runs[1:]
    return set(runs)


def register_secret(value: str | bytes | None) -> None:
    """Remember ``value`` so `redact` hides it from now on (thread-safe, idempotent).

    A JWT needs no registration to be hidden whole (`redact` recognises its shape);
    registering it also hides its payload and signature, and the pieces of them left
    when a long text was cut. Registering is a set lookup and an append. The next
    `redact` splits what was registered since into the lookups it uses
    (`_take_pending`). The tokens this package mints take `register_token` instead.
    """
    if value is None:
        return
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    _remember(text, _pending)


def register_token(token: str) -> None:
    """Remember a JWT this package minted, as `register_secret` does, but split it into
    its pieces only when a text to redact could hold one (`_may_hold_a_token_piece`).

    A split costs tens of thousands of instructions a token, and a suite that prints
    none of its tokens paid it for every test at the summary's first `redact` (about
    90,000 instructions a test, counted by ``benchmarks/suite_overhead.py``'s method).
    A whole token needs no split (`redact` hides the shape of a JWT), and a piece of one
    is a run of base64url characters that a text without such a run cannot hold. A value
    that is not shaped like a whole JWT is hidden as a literal, so it is queued as
    `register_secret` queues it: the next `redact` splits it, whatever its text.
    """
    _remember(token, _pending_tokens if _is_jwt(token) else _pending)


def _remember(text: str, queue: list[str]) -> None:
    """Queue ``text`` for its split, unless it was registered before (every client
    registers its user's token, minted and registered already: a set lookup)."""
    if text in _registered:
        return
    with _lock:
        _registered.add(text)
        queue.append(text)


def _may_hold_a_token_piece(text: str) -> bool:
    """``text`` has a run that a registered token's piece could be or stand in: a run of
    at least `_MIN_SEGMENT_LEN` (a whole segment), or a random-looking run of at least
    `_MIN_PIECE_LEN` (a head or a tail: `_is_piece` hides no other). A run that follows an
    escape such as ``\\n`` is longer here by its letter, never shorter or less random."""
    for run in _runs(text):
        size = len(run)
        if size >= _MIN_SEGMENT_LEN or (size >= _MIN_PIECE_LEN and _looks_random(run)):
            return True
    return False


def _looks_random(run: bytes) -> bool:
    """True when the ASCII ``run`` mixes at least two of lower case, upper case and
    digits.

    Only such runs count as the cut piece of a secret: a word ("registered") that a
    human-readable secret happens to begin or end with stays readable. A random piece of
    8 base64url characters falls in one class with a chance of about 0.15 %.
    """
    classes = (
        (run.upper() != run)  # a lower-case letter
        + (run.lower() != run)  # an upper-case letter
        + (len(run.translate(None, b"0123456789")) != len(run))  # a digit
    )
    return classes >= 2


def _take_pending(queue: list[str]) -> None:
    """Split every value of ``queue`` (`_pending` or `_pending_tokens`) into the literal
    secrets and the segments `redact` looks up; called by `redact` before it reads
    them."""
    global _dirty, _views_dirty
    with _lock:
        while queue:
            text = queue.pop()
            variants = {text}
            # PEM keys are multi-line: hide every substantial line of them as well.
            if "\n" in text:
                variants.update(line.strip() for line in text.splitlines())
            variants = {
                v for v in variants if len(v) >= _MIN_SECRET_LEN and not v.startswith("-----")
            }
            segments: set[str] = set()
            literals: set[str] = set()
            for variant in variants:
                is_jwt = _is_jwt(variant)
                segments |= _secret_segments(variant, is_jwt)
                if not is_jwt:
                    literals.add(variant)
            if not literals <= _secrets:
                _secrets.update(literals)
                _dirty = True
            new = segments - _segments
            if new:
                _segments.update(new)
                _views_dirty = True
                _head_keys.update(seg[:_MIN_PIECE_LEN].encode() for seg in new)
                _tail_keys.update(seg[-_MIN_PIECE_LEN:].encode() for seg in new)


def registered_secret_count() -> int:
    _take_pending(_pending)
    _take_pending(_pending_tokens)
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


def _sorted_views() -> tuple[list[str], list[str]]:
    """The segments sorted, and sorted reversed; rebuilt after a registration."""
    global _heads, _tails, _views_dirty
    if _views_dirty:
        with _lock:
            if _views_dirty:
                _heads = sorted(_segments)
                _tails = sorted(segment[::-1] for segment in _segments)
                _views_dirty = False
    return _heads, _tails


def _begins_one_of(piece: str, ordered: list[str]) -> bool:
    """True when ``piece`` begins some string of the sorted list ``ordered``."""
    at = bisect.bisect_left(ordered, piece)
    return at < len(ordered) and ordered[at].startswith(piece)


def _is_piece(run: str) -> bool:
    """True when ``run`` is a registered segment, or a random-looking head or tail of
    one."""
    if run in _segments:
        return True
    if not _looks_random(run.encode("ascii")):
        return False
    heads, tails = _sorted_views()
    return _begins_one_of(run, heads) or _begins_one_of(run[::-1], tails)


def _piece(match: re.Match[str]) -> str:
    run = match.group()
    return REDACTED if run[0] != "\\" and _is_piece(run) else run


def _holds_a_piece(text: str) -> bool:
    """The fast test before `_RUN_RE`'s substitution, true when ``text`` may hold a piece.

    The runs are cut out with bytes methods (C speed) and each is looked up by its first
    and last 8 characters (a head of a segment starts like it, a tail ends like it); a
    run after an escape such as ``\\n`` is also tried without its first letter. Most
    texts hold no piece, and then no regex and no bisection runs at all.
    """
    for run in _runs(text):
        if len(run) < _MIN_PIECE_LEN:
            continue
        if run[:_MIN_PIECE_LEN] in _head_keys or run[-_MIN_PIECE_LEN:] in _tail_keys:
            return True
        if run[0] in b"nrt" and run[1 : _MIN_PIECE_LEN + 1] in _head_keys:
            return True
    return False


def redact(text: str) -> str:
    """Return ``text`` with URL passwords, registered secrets, JWT-shaped strings and
    the surviving pieces of cut secrets replaced by `REDACTED`."""
    if not text:
        return text
    if _pending:
        _take_pending(_pending)
    if _pending_tokens and _may_hold_a_token_piece(text):
        _take_pending(_pending_tokens)
    if "://" in text:
        text = _USERINFO_RE.sub(rf"\g<1>{REDACTED}@", text)
    pattern = _current_pattern()
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _JWT_RE.sub(REDACTED, text)
    if "..." in text or "\u2026" in text:
        text = _CUT_JWT_RE.sub(REDACTED, text)
    if _segments and _holds_a_piece(text):
        text = _RUN_RE.sub(_piece, text)
    return text


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
