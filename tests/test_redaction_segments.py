"""`redact` on the pieces a cut leaves of a secret, and on URL passwords.

Unit tests of the pure redaction module: the tokens are real HS256 JWTs minted by the
package (`TokenFactory`), the cuts are pytest's own (`saferepr`, the diff's skipped
prefix), so each case is the text pytest would print.
"""

from __future__ import annotations

import pytest
from _pytest._io.saferepr import saferepr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_ws_resilience import redaction
from pytest_ws_resilience.client.tokens import TokenFactory
from pytest_ws_resilience.redaction import REDACTED, redact, register_secret

FACTORY = TokenFactory(secret="unit-test-secret-of-32-bytes-x!!")


@pytest.fixture
def token() -> str:
    """A fresh token, registered (as every token the package mints is)."""
    minted = FACTORY.user().token
    assert minted is not None
    return minted


def _pieces(token: str) -> tuple[str, str, str]:
    header, payload, signature = token.split(".")
    return header, payload, signature


def test_a_saferepr_cut_token_shows_neither_its_payload_tail_nor_its_signature(token):
    _, payload, signature = _pieces(token)
    cut = saferepr(token, maxsize=120)  # pytest's own cut: head ... tail
    assert "..." in cut and signature[-20:] in cut  # the cut does leave the tail
    shown = redact(cut)
    assert signature[-8:] not in shown
    assert payload[-8:] not in shown
    assert payload[:12] not in shown
    # Only the markers, the quotes, the ellipsis and the dot between segments are left.
    assert shown.startswith(f"'{REDACTED}...{REDACTED}"), shown
    assert set(shown.replace(REDACTED, "")) <= set("'."), shown


def test_a_cut_inside_the_signature_hides_what_is_left_of_it(token):
    _, _, signature = _pieces(token)
    cut = f"'{token[:20]}...{signature[-13:]}'"
    assert redact(cut) == f"'{REDACTED}...{REDACTED}'"


def test_a_diff_that_skipped_the_identical_prefix_hides_the_payload_tail(token):
    _, payload, signature = _pieces(token)
    tail = token[len(token) - len(signature) - 30 :]  # 29 payload chars, dot, signature
    shown = redact(f"+ {tail}")
    assert shown == f"+ {REDACTED}.{REDACTED}"
    assert payload[-29:] not in shown


@pytest.mark.parametrize("segment", [1, 2], ids=["payload", "signature"])
def test_a_registered_tokens_payload_and_signature_are_hidden_alone(token, segment):
    piece = token.split(".")[segment]
    assert redact(f"value={piece};") == f"value={REDACTED};"


def test_the_jwt_header_alone_is_no_secret_and_stays(token):
    header = token.split(".")[0]
    assert redact(f"alg header {header}") == f"alg header {header}"


def test_an_unregistered_jwt_cut_by_an_ellipsis_loses_its_head():
    foreign = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzb21lb25lLWVsc2UifQ"
    assert redact(f"{foreign}...") == f"{REDACTED}..."


def test_a_whole_token_followed_by_an_ellipsis_is_hidden_and_the_ellipsis_kept(token):
    assert redact(f"got {token}... then") == f"got {REDACTED}... then"


def test_a_secret_that_is_no_jwt_is_hidden_when_cut_too():
    secret = "Zq3x9Lm2Vb7Nc4Rt8Yp1Kd6Hs5Wf0Ge-run-secret"
    register_secret(secret)
    assert redact(f"'{secret[:15]}...'") == f"'{REDACTED}...'"
    assert redact(f"'...{secret[-20:]}'") == f"'...{REDACTED}'"
    # A readable tail alone ("e-run-secret") is no random piece: it stays (see
    # test_a_word_a_readable_secret_begins_with_stays_readable).


def test_a_pem_line_shown_by_repr_is_hidden_after_its_escape():
    line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
    register_secret(f"-----BEGIN PRIVATE KEY-----\n{line}\n-----END PRIVATE KEY-----\n")
    shown = redact(repr(f"-----BEGIN PRIVATE KEY-----\n{line[:30]}"))
    assert line[:30] not in shown
    assert "\\n" in shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://alice:pw@127.0.0.1:1/ws", f"ws://alice:{REDACTED}@127.0.0.1:1/ws"),
        ("wss://bob:s3cr%40t@h.example:443", f"wss://bob:{REDACTED}@h.example:443"),
        ("redis://:hunter2@127.0.0.1:6379/0", f"redis://:{REDACTED}@127.0.0.1:6379/0"),
        ("'ws://a:p@ss@127.0.0.1:1'", f"'ws://a:{REDACTED}@127.0.0.1:1'"),
    ],
)
def test_a_url_password_is_hidden_registered_or_not(url, expected):
    assert redact(url) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ws://alice@127.0.0.1:1/ws",  # a user name alone is no password
        "ws://127.0.0.1:8000/ws?room=a:b@c",  # an @ in the query is no userinfo
        f"ws://alice:{REDACTED}@127.0.0.1:1/ws",  # redacting twice changes nothing
        '{"type": "connection_established", "connection_id": "c0ffee-1234"}',
    ],
)
def test_text_without_a_secret_is_unchanged(text):
    assert redact(text) == text


def test_a_word_a_readable_secret_begins_with_stays_readable():
    # A human-readable secret (as tests and demos use) must not hide ordinary words
    # that happen to be its head or tail; its random-looking pieces still go.
    register_secret("registered-but-readable-secret-value")
    shown = redact("a frame holding the user's registered marker 'alice private'")
    assert shown == "a frame holding the user's registered marker 'alice private'"
    assert redact("registered-but-readable-secret-value") == REDACTED


def test_a_minted_token_is_split_only_once_a_text_could_hold_a_piece_of_it():
    token = FACTORY.user().token
    _, payload, _ = _pieces(token)
    # Nothing in this text is a run a piece could be: no run of 16, no random 8.
    plain = "server: embedded reference server at ws://127.0.0.1:8000/ (passed 3)"
    assert redact(plain) == plain
    assert token in redaction._pending_tokens
    # The first text with such a run has every pending token split, and hides the piece.
    assert redact(f"seen: {payload[-10:]}") == f"seen: {REDACTED}"
    assert not redaction._pending_tokens


@pytest.mark.parametrize("size", [8, 16])
@pytest.mark.parametrize("where", ["head", "tail"])
@pytest.mark.parametrize("segment", [1, 2], ids=["payload", "signature"])
def test_the_shortest_piece_of_a_token_not_split_yet_is_hidden(segment, where, size):
    # About 0.15 % of 8-character pieces fall in one character class ("qy-ngus-") and
    # stay readable by design (`_looks_random`); the test takes a token whose piece
    # does not, instead of failing at random (seen once in CI).
    for _ in range(20):
        token = FACTORY.user().token  # registered, not split yet
        whole = token.split(".")[segment]
        piece = whole[:size] if where == "head" else whole[-size:]
        if size > 8 or redaction._looks_random(piece.encode("ascii")):
            break
    assert token in redaction._pending_tokens
    assert redact(f"({piece})") == f"({REDACTED})"


_FRAGMENTS = st.sampled_from(
    ["reference", "server", "abcdefgh", "ABCDEFGH1", " ", ".", "...", "\\n", "'", "=", "é"]
)


@settings(
    max_examples=300, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.data())
def test_a_token_split_late_is_hidden_as_one_split_at_once_would_be(data):
    token = FACTORY.user().token  # registered, not split yet
    segments = token.split(".")[1:]
    # Heads and tails (what a cut leaves) around the sizes that decide, and middles.
    piece = st.builds(
        lambda segment, size, where: (
            segment[:size]
            if where == "head"
            else segment[-size:]
            if where == "tail"
            else segment[size : size * 2]
        ),
        st.sampled_from(segments),
        st.integers(6, 20),
        st.sampled_from(["head", "tail", "middle"]),
    )
    text = "".join(data.draw(st.lists(st.one_of(piece, _FRAGMENTS), max_size=6)))
    late = redact(text)
    redaction.registered_secret_count()  # splits every token still pending
    assert not redaction._pending_tokens
    assert redact(text) == late


def test_a_value_registered_as_a_token_that_is_no_jwt_is_hidden_at_once():
    # Not a whole JWT, so `redact` cannot hide it by its shape: it must not wait for a
    # text with a random-looking run, as a minted token's split does.
    redaction.register_token("p@ss w0rd!")
    assert redact("the password is p@ss w0rd! today") == f"the password is {REDACTED} today"
