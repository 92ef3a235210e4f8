"""Split outbound text into chat messages the server will neither cut nor run.

Pure functions.  Length is counted in UTF-16 code units because the server cuts
with JavaScript ``substring``; a part that starts with ``/`` is escaped with a
leading space (the server then broadcasts it as typed instead of running it as a
command such as ``/kick`` or ``/clear``).
"""

from __future__ import annotations

import re

from rosey.config_schema import MESSAGE_LENGTH_DEFAULT

ELLIPSIS = "…"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?…](?=\s)")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def normalise(text: str) -> str:
    """What the server would do to whitespace anyway: one line, single spaces."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def neutralise_command(part: str) -> str:
    """Never let a part start with '/': the server would run it with the bot's rank."""
    return " " + part if part.startswith("/") else part


def split_message(text: str, limit: int = MESSAGE_LENGTH_DEFAULT, max_parts: int = 3) -> list[str]:
    """Fill each part greedily to ``limit`` at word boundaries, backing off to a
    sentence end only when that does not add a part; cap at ``max_parts`` (the
    last part then ends with an ellipsis)."""
    text = normalise(text)
    if not text:
        return []
    budget = limit - 1  # room for the leading space of a neutralised '/'
    greedy = _greedy(text, budget)
    parts: list[str] = []
    rest = text
    while rest:
        remaining_parts = len(greedy) - len(parts)
        cut = _word_cut(rest, budget)
        sentence_cut = _sentence_cut(rest, budget)
        if sentence_cut and sentence_cut < cut:
            tail = rest[sentence_cut:].strip()
            if len(_greedy(tail, budget)) <= remaining_parts - 1:
                cut = sentence_cut
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if len(parts) > max_parts:
        parts = parts[:max_parts]
        parts[-1] = _truncate(parts[-1], budget - utf16_len(ELLIPSIS)) + ELLIPSIS
    return [neutralise_command(p) for p in parts if p]


def _greedy(text: str, budget: int) -> list[str]:
    parts = []
    while text:
        cut = _word_cut(text, budget)
        parts.append(text[:cut])
        text = text[cut:].strip()
    return parts


def _fits(text: str, budget: int) -> int:
    """The largest prefix length (in code points) of ``text`` within ``budget`` units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > budget:
            return index
    return len(text)


def _word_cut(text: str, budget: int) -> int:
    end = _fits(text, budget)
    if end >= len(text):
        return len(text)
    space = text.rfind(" ", 0, end + 1)
    # A single word longer than a third of the limit is cut hard rather than
    # leaving a mostly empty part.
    return space if space > budget // 3 else max(end, 1)


def _sentence_cut(text: str, budget: int) -> int:
    end = _fits(text, budget)
    best = 0
    for match in _SENTENCE_END.finditer(text, 0, end):
        best = match.end()
    return best


def _truncate(text: str, budget: int) -> str:
    end = _fits(text, budget)
    if end >= len(text):
        return text
    space = text.rfind(" ", 0, end)
    return text[: space if space > budget // 2 else end].rstrip()
