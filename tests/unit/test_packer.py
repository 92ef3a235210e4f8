"""Packing a streamed reply: an early first sentence, greedy parts after it, the cap."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rosey.conn.packer import MIN_FIRST, Packer, Streams
from rosey.conn.split import _greedy, split_message, utf16_len
from rosey.sentences import sentence_ends

FIRST = "alice: The film is a 1968 science fiction classic directed by Stanley Kubrick."
REST = ("It follows a voyage to Jupiter with the sentient computer HAL after the discovery "
        "of a mysterious black monolith. The effects still hold up. Many critics call it "
        "the greatest film ever made, and its influence on the genre is hard to overstate. "
        "It was shot in England over several years. The score uses classical music, "
        "famously Strauss. Watch it on the biggest screen you can find.")


def sentences(text: str) -> list[str]:
    """The pieces a caller would send: each sentence with the space before it."""
    out, prev = [], 0
    for end in sentence_ends(text, final=True):
        out.append(text[prev:end])
        prev = end
    return out + ([text[prev:]] if text[prev:].strip() else [])


def stream(packer: Packer, pieces: list[str]) -> list[tuple[int, str]]:
    """(index of the piece after which a part came out, part)."""
    posted = [(i, part) for i, piece in enumerate(pieces) for part in packer.feed(piece)]
    return posted + [(len(pieces), part) for part in packer.finish()]


def test_first_sentence_goes_alone_then_the_rest_is_packed_greedily() -> None:
    packer = Packer(limit=320, max_parts=3)
    pieces = sentences(FIRST + " " + REST)
    posted = stream(packer, pieces)
    assert posted[0] == (0, FIRST)  # right after the first piece, not later
    rest = [part for _, part in posted[1:]]
    assert rest == [p.strip() for p in _greedy(REST, 319)]  # greedy: no sentence back-off
    assert all(utf16_len(part) <= 320 for _, part in posted)
    # Nothing lost or doubled.
    assert " ".join(p for _, p in posted).split() == (FIRST + " " + REST).split()
    # Later parts went out only when full or at the end.
    assert [i for i, _ in posted][-1] == len(pieces)


def test_a_short_first_sentence_waits_for_more() -> None:
    packer = Packer(limit=320, max_parts=3)
    assert packer.feed("alice: Sure!") == []  # a lone "Sure!" is not a message
    assert len("alice: Sure!") < MIN_FIRST
    parts = packer.feed(" Here is what I know about the film and its director.")
    assert parts == ["alice: Sure! Here is what I know about the film and its director."]


def test_no_sentence_end_waits_for_a_full_part() -> None:
    packer = Packer(limit=100, max_parts=3)
    words = "alice: " + "word " * 30
    assert packer.feed(words[:90]) == []
    parts = packer.feed(words[90:])
    assert len(parts) == 1 and 90 <= utf16_len(parts[0]) <= 99
    assert packer.finish() and packer.closed


def test_never_more_than_one_part_over_the_unstreamed_split() -> None:
    for limit in (60, 100, 200, 320):
        text = FIRST + " " + REST
        unstreamed = split_message(text, limit, 50)
        packer = Packer(limit=limit, max_parts=50)
        streamed = [p for _, p in stream(packer, sentences(text))]
        assert len(unstreamed) <= len(streamed) <= len(unstreamed) + 1, limit
        assert " ".join(streamed).split() == text.split()


def test_the_cap_ends_with_an_ellipsis_and_drops_the_rest() -> None:
    packer = Packer(limit=100, max_parts=2)
    posted = [p for _, p in stream(packer, sentences(FIRST + " " + REST))]
    # The early first part costs one extra message, never more.
    assert len(posted) == 3
    assert posted[-1].endswith("…") and packer.dropped
    assert all(utf16_len(p) <= 100 for p in posted)
    assert packer.feed("More text.") == [] and packer.finish() == []
    # Without an early first part, the cap is max_parts exactly.
    packer = Packer(limit=100, max_parts=2)
    posted = [p for _, p in stream(packer, ["word " * 80])]
    assert len(posted) == 2 and posted[-1].endswith("…")


def test_no_part_starts_with_a_slash() -> None:
    packer = Packer(limit=60, max_parts=5)
    posted = [p for _, p in stream(packer, ["/kick everyone now please, that is the plan here.",
                                            " /clear " + "x " * 40, " /me waves"])]
    assert posted and all(not p.startswith("/") for p in posted)
    assert any(p.startswith(" /") for p in posted)


def test_utf16_limit_counts_emoji_as_two() -> None:
    packer = Packer(limit=50, max_parts=10)
    posted = [p for _, p in stream(packer, ["🎉" * 60])]
    assert all(utf16_len(p) <= 50 for p in posted)
    assert "".join(posted) == "🎉" * 60


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab .!?/🎉é。\n")), max_size=40),
                max_size=12), st.integers(min_value=40, max_value=200))
def test_any_stream_fits_the_limit_and_loses_nothing_below_the_cap(
        pieces: list[str], limit: int) -> None:
    packer = Packer(limit=limit, max_parts=100)
    posted = [p for _, p in stream(packer, pieces)]
    assert all(0 < utf16_len(p) <= limit for p in posted)
    assert all(not p.startswith("/") for p in posted)
    assert "".join("".join(posted).split()) == "".join("".join(pieces).split())


def test_streams_feed_each_segment_once_in_order_and_riders_wait_for_their_part() -> None:
    streams = Streams()
    assert streams.take("r", 0, "alice: Sure!", False, 320, 3) == ([], [], True)  # held
    assert streams.take("r", 0, "alice: Sure!", False, 320, 3) is None  # a re-offer
    assert streams.take("r", 2, " Later.", False, 320, 3) is None  # after a gap
    sentence = " Here is the film you mean, by Stanley Kubrick."
    taken = streams.take("r", 1, sentence, False, 320, 3)
    assert taken is not None
    parts, riders, held = taken
    assert parts == ["alice: Sure!" + sentence] and riders == [0] and not held
    assert streams.take("r", 2, " More.", False, 320, 3) == ([], [], True)
    assert streams.take("r", 3, "", True, 320, 3) == (["More."], [2], False)
    assert streams.take("r", 3, "", True, 320, 3) is None  # finished: re-offers ignored
    # A final segment with nothing left to post finishes itself and its riders at once.
    assert streams.take("s", 0, "alice: Hi.", False, 320, 3) == ([], [], True)
    assert streams.take("s", 1, "", True, 320, 3) == (["alice: Hi."], [0], False)
    assert streams.take("t", 0, "", True, 320, 3) == ([], [0], False)
