"""Splitting replies: UTF-16 lengths, greedy parts, sentence back-off, '/' never leads."""

from __future__ import annotations

from rosey.cytube.split import neutralise_command, split_message, utf16_len

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
