"""The caller's cut of a streamed answer into Partial pieces."""

from __future__ import annotations

from fakes.llm import tokens_of
from rosey.caller.chunker import Chunker

ANSWER = ("Dr. Who first aired in 1963, at 5.15 p.m. on the BBC. It ran for 26 seasons! "
          "Then it came back in 2005… with new doctors. See https://bbc.co.uk/doctorwho. Enjoy")


def test_pieces_end_at_sentence_ends_and_join_to_the_whole_text() -> None:
    chunker = Chunker()
    pieces = [p for tok in tokens_of(ANSWER) for p in chunker.feed(tok)]
    assert [p.strip() for p in pieces] == [
        "Dr. Who first aired in 1963, at 5.15 p.m. on the BBC.",
        "It ran for 26 seasons!",
        "Then it came back in 2005… with new doctors.",
        "See https://bbc.co.uk/doctorwho.",
    ]
    # The unfinished last sentence stays with the chunker (the Result carries it).
    assert "".join(pieces) + chunker.pending == ANSWER
    assert chunker.sent == len("".join(pieces))


def test_a_piece_is_sent_when_the_next_token_confirms_the_end() -> None:
    chunker = Chunker()
    assert chunker.feed("Pi is 3") == [] and chunker.feed(".") == []  # 3. may be 3.14
    assert chunker.feed("14") == [] and chunker.feed(".") == []
    assert chunker.feed(" It") == ["Pi is 3.14."]


def test_a_long_run_without_an_end_is_cut_at_a_space() -> None:
    chunker = Chunker(max_piece=50)
    pieces = [p for tok in tokens_of("word " * 40) for p in chunker.feed(tok)]
    assert pieces and all(len(p) <= 50 for p in pieces)
    assert "".join(pieces) + chunker.pending == "word " * 40
