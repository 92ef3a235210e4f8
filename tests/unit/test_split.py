"""Splitting replies: UTF-16 lengths, greedy parts, sentence back-off, '/' never leads."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import cytube_filters as cf
from rosey.conn.split import neutralise_command, normalise, split_message, utf16_len

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank today. "


def test_short_text_is_one_part() -> None:
    assert split_message("hello  there\n friend") == ["hello there friend"]


def test_610_characters_fit_two_parts_of_at_most_320_and_lose_nothing() -> None:
    text = (SENTENCE * 9)[:610].strip()
    parts = split_message(text, 320, 3)
    assert len(parts) == 2
    assert all(utf16_len(p) <= 320 for p in parts)
    assert " ".join(parts).split() == text.split()


def test_backs_off_to_sentence_end_only_when_no_part_is_added() -> None:
    roomy = "Alpha beta gamma. " + "word " * 19 + "end"  # two parts either way
    assert split_message(roomy, 100, 3) == ["Alpha beta gamma.", "word " * 19 + "end"]
    tight = "Alpha. " + "word " * 37 + "end"  # cutting at "Alpha." would need a third part
    parts = split_message(tight, 100, 3)
    assert len(parts) == 2
    assert parts[0].startswith("Alpha. word") and len(parts[0]) == 96


def test_length_counted_in_utf16_units() -> None:
    emoji = "🎉" * 200  # 400 UTF-16 units, 200 code points
    parts = split_message(emoji, 320, 3)
    assert all(utf16_len(p) <= 320 for p in parts)
    assert "".join(parts) == emoji
    assert len(parts) == 2


def test_part_cap_ends_with_ellipsis() -> None:
    parts = split_message("word " * 400, 100, 3)
    assert len(parts) == 3
    assert parts[-1].endswith("…")
    assert all(utf16_len(p) <= 100 for p in parts)


def test_no_part_starts_with_a_slash() -> None:
    for text in ("/kick alice", "/clear", "/dance party", "//x", "/me waves"):
        parts = split_message(text)
        assert parts and not parts[0].startswith("/"), parts
        assert parts[0].strip() == text
    long = "x " * 150 + "/kick alice " + "y " * 100
    assert all(not p.startswith("/") for p in split_message(long, 320, 3))
    assert neutralise_command("/kick") == " /kick"
    assert neutralise_command("hi /kick") == "hi /kick"


def test_hard_cut_of_a_giant_word() -> None:
    parts = split_message("z" * 700, 320, 3)
    assert [utf16_len(p) for p in parts] == [319, 319, 62]


# ---- properties (hypothesis), emoji and other non-BMP text included ---------------------------



# Words drawn to provoke the edge cases: slashes (commands, /dance), sentence ends, emoji
# (two UTF-16 units each), CJK, control characters and odd spaces.
WORD_CHARS = st.sampled_from(
    [*"abcxyz/.!?…,-_*`~>", "🎉", "😀", "𝄞", "中", "é", "\u200b", "\x07", "\t", "\n"]
)
WORDS = st.lists(st.text(WORD_CHARS, min_size=1, max_size=40), min_size=0, max_size=120)
COMMANDS = ["/kick", "/clear", "/dance", "/d", "/me", "/afk", "/ban", "/mute", "/rank",
            "/poll", "/clean", "/sp", "/say", "/a", "/kickanons", "/smute", "/unmute"]
SEPARATORS = st.sampled_from([" ", "  ", "\n", "\t", " \u3000 "])
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def texts(draw: st.DrawFn) -> str:
    words = draw(WORDS)
    if draw(st.booleans()):  # a command word somewhere, often where a part may start
        words.insert(draw(st.integers(0, len(words))), draw(st.sampled_from(COMMANDS)))
    seps = [draw(SEPARATORS) for _ in words]
    return "".join(w + s for w, s in zip(words, seps, strict=True))


def _squeeze(text: str) -> str:
    return "".join(text.split())


@SETTINGS
@given(text=texts(), limit=st.integers(8, 400))
def test_property_parts_fit_never_run_a_command_and_lose_nothing(text: str, limit: int) -> None:
    parts = split_message(text, limit, max_parts=10_000)
    for part in parts:
        assert 0 < utf16_len(part) <= limit
        assert not part.startswith("/")
        assert cf.command_of(cf.prepare(part, limit) or "") is None  # the server runs nothing
        assert not any(ord(c) < 0x20 for c in part)
    # every character (but whitespace) survives, in order: nothing dropped, nothing reordered
    assert _squeeze("".join(parts)) == _squeeze(normalise(text))
    # a part the server cuts at `limit` UTF-16 units is unchanged by the cut
    assert all(cf.js_substring(p, limit) == p for p in parts)


@SETTINGS
@given(text=texts(), limit=st.integers(40, 400))
def test_property_words_shorter_than_a_quarter_part_are_never_split(text: str,
                                                                    limit: int) -> None:
    words = normalise(text).split()
    if any(utf16_len(w) >= limit // 4 for w in words):
        return
    parts = split_message(text, limit, max_parts=10_000)
    assert " ".join(parts).split() == words


@SETTINGS
@given(text=texts(), limit=st.integers(20, 200), max_parts=st.integers(1, 4))
def test_property_the_cap_keeps_a_clean_prefix(text: str, limit: int, max_parts: int) -> None:
    full = split_message(text, limit, max_parts=10_000)
    capped = split_message(text, limit, max_parts)
    assert len(capped) == min(len(full), max_parts)
    assert all(utf16_len(p) <= limit and not p.startswith("/") for p in capped)
    if len(full) > max_parts:
        assert capped[-1].endswith("…")
        kept = _squeeze("".join(capped))[:-1]
        assert _squeeze(normalise(text)).startswith(kept)
    else:
        assert capped == full


def test_emoji_at_the_boundary_is_never_split_in_half() -> None:
    text = "a" * 318 + "🎉🎉"  # the first emoji would straddle unit 320
    parts = split_message(text, 320, 3)
    assert all(utf16_len(p) <= 320 for p in parts)
    assert "".join(parts) == text and all("\ud83c" not in p for p in parts)
