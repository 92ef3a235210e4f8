"""A later part of a long reply never starts with '/': the first part starts with "user: ",
so only the splitter's escape stands between part 2 and the server running ``/kick``."""

from __future__ import annotations

from fakes.command_replies import long_answer
from rosey.conn.split import split_message, utf16_len
from rosey.router.prompts import address


def test_parts_that_would_start_with_a_slash_are_escaped() -> None:
    for limit in (80, 320, 1000):
        text = address("alice", long_answer("alice", limit))
        parts = split_message(text, limit, 3)
        assert [p[:7] for p in parts[1:]] == [" /kick ", " /clear"], parts
        assert parts[0].startswith("alice: ")
        assert all(utf16_len(p) <= limit for p in parts)
        assert " ".join(parts).split() == text.split()  # nothing lost but the escape
