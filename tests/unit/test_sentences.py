"""Sentence ends in streamed text: table-driven, each row says where the ends are."""

from __future__ import annotations

import pytest

from rosey.sentences import ends_sentence, last_end, sentence_ends


def pieces(text: str, final: bool = True) -> list[str]:
    """The text cut at its sentence ends (whitespace between them dropped)."""
    out, prev = [], 0
    for end in sentence_ends(text, final):
        out.append(text[prev:end].strip())
        prev = end
    rest = text[prev:].strip()
    return out + ([rest] if rest else [])


CASES = [
    # (text, sentences when the text is complete)
    ("Hello there. How are you?", ["Hello there.", "How are you?"]),
    ("Wow! Really? Yes.", ["Wow!", "Really?", "Yes."]),
    ("What?! No way.", ["What?!", "No way."]),
    # abbreviations and initials
    ("Dr. Smith is in. Mr. Jones left.", ["Dr. Smith is in.", "Mr. Jones left."]),
    ("Use a tool, e.g. a hammer. Then stop.", ["Use a tool, e.g. a hammer.", "Then stop."]),
    ("Read J. R. R. Tolkien first. It is long.", ["Read J. R. R. Tolkien first.",
                                                  "It is long."]),
    ("It weighs approx. five kilos. Heavy.", ["It weighs approx. five kilos.", "Heavy."]),
    ("Apples, pears, etc. are fruit. Eat them.", ["Apples, pears, etc. are fruit.",
                                                 "Eat them."]),
    ("Apples, pears, etc. Then bread.", ["Apples, pears, etc.", "Then bread."]),
    ("Born in the U.S. and raised there. Yes.", ["Born in the U.S. and raised there.",
                                                "Yes."]),
    # decimals and numbers
    ("Pi is 3.14 or so. Tau is 6.28.", ["Pi is 3.14 or so.", "Tau is 6.28."]),
    ("It costs $4.99. Cheap.", ["It costs $4.99.", "Cheap."]),
    ("Chapter 3. 42 is the answer.", ["Chapter 3.", "42 is the answer."]),
    # URLs
    ("See https://example.com/a.b?x=1&y=2. It helps.", ["See https://example.com/a.b?x=1&y=2.",
                                                        "It helps."]),
    ("Go to example.com. Then log in.", ["Go to example.com.", "Then log in."]),
    ("Is it https://x.org/?q=a! yes", ["Is it https://x.org/?q=a!", "yes"]),
    # ellipses
    ("Well... I think so. Sure.", ["Well...", "I think so.", "Sure."]),
    ("Hmm… let me see. Okay.", ["Hmm… let me see.", "Okay."]),
    ("Wait… What now?", ["Wait…", "What now?"]),
    # emoji
    ("That is great! 🎉 Next one.", ["That is great! 🎉", "Next one."]),
    ("Love it 😊 The rest follows.", ["Love it 😊", "The rest follows."]),
    ("Thumbs up 👍🏽. Done.", ["Thumbs up 👍🏽.", "Done."]),
    ("Family 👨‍👩‍👧 time! Go.", ["Family 👨‍👩‍👧 time!", "Go."]),
    # CJK full stops
    ("你好。我很好！你呢？", ["你好。", "我很好！", "你呢？"]),
    ("「こんにちは。」と言った。", ["「こんにちは。」", "と言った。"]),
    # closing quotes and brackets
    ('He said "hi." Then left.', ['He said "hi."', "Then left."]),
    ("It works (mostly.) Try it.", ["It works (mostly.)", "Try it."]),
    ("She asked “why?” Nobody knew.", ["She asked “why?”", "Nobody knew."]),
    # line breaks end list items
    ("Options:\n- one\n- two", ["Options:", "- one", "- two"]),
    # no end at all
    ("no punctuation here", ["no punctuation here"]),
    ("...", ["..."]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_complete_text_splits_into_its_sentences(text: str, expected: list[str]) -> None:
    assert pieces(text) == expected


STREAMING = [
    # (text so far, the last confirmed end while more may come)
    ("Pi is 3.", 0),  # may become 3.14
    ("Pi is 3.1", 0),
    ("Visit example.", 0),  # may become example.com
    ("Done.", 0),  # the next token carries the space
    ("Done. ", 0),  # a lower-case word may follow (approx. five)
    ("Done. T", 5),
    ("Sure! ", 5),  # ! and ? need no look at the next word
    ("Sure!", 0),  # may become Sure!?
    ('He said "hi.', 0),  # the closing quote may follow
    ('He said "hi." ', 0),
    ('He said "hi." N', 13),
    ("Yes! 🎉", 0),  # the emoji run may go on
    ("Yes! 🎉 Then", 6),
    ("你好。", 0),  # a closing bracket may follow
    ("你好。我", 3),
    ("Well... ", 0),
]


@pytest.mark.parametrize(("text", "end"), STREAMING)
def test_an_end_counts_only_once_the_next_character_confirms_it(text: str, end: int) -> None:
    assert last_end(text) == end
    # ...and the same text, complete, does end where it ends (a pair for each row).
    assert last_end(text.rstrip(), final=True) in (len(text.rstrip()), end, 0)


def test_ends_sentence() -> None:
    assert ends_sentence("All done. ")
    assert ends_sentence("你好。")
    assert not ends_sentence("and then the")
    assert not ends_sentence("")
