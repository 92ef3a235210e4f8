"""Where sentences end in text that is still arriving.  Pure and clock-free.

Used by the caller (to cut a streamed answer into sentence-sized ``Partial`` pieces) and
by conn's packer (to post the first sentence as soon as it is complete).  Both see text a
token at a time, so an end counts only once it is *confirmed* by the character after it:

* ``.``, ``!``, ``?``, ``…``, ``...`` end a sentence when whitespace follows (after any
  closing quotes or brackets: ``He said "hi." Then`` ends after the quote).  Text that
  ends with ``3.`` may yet become ``3.14``, ``example.`` may become ``example.com``: the
  whitespace arrives with the next token (``" The"``), so waiting for it costs nothing.
* ``.`` does not end one after a title or abbreviation (``Dr. Smith``, ``e.g. this``), a
  single initial (``J. R. R. Tolkien``), or when the next word starts in lower case
  (``approx. five``).  ``etc.``, dotted acronyms (``U.S.``) and ellipses end one only
  when the next word starts in upper case (``Well... I think``).
* CJK full stops ``。！？`` (and fullwidth ``．！？``) end one with no space after them,
  once the next character shows no closing bracket follows.
* An emoji right after the end (``Done! 🎉 Next``) stays with its sentence; an emoji run
  followed by a capitalised word also ends a sentence (``Great 😊 The answer``).
* A line break ends a sentence (list items often have no full stop).

``final=True`` says no more text will come: an end at the very end of the text counts.
"""

from __future__ import annotations

import unicodedata

TERMINATORS = frozenset(".!?…")
CJK_TERMINATORS = frozenset("。！？．")
_BLANKS = frozenset(" \t")
CLOSERS = frozenset("\"'”’)]}»›」』）】〕〉》")
# Never the end of a sentence: titles and abbreviations that introduce what follows.
# Words that are also common at a sentence's end (no, min, co) are left out on purpose.
ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "gen", "sgt", "capt",
    "lt", "col", "gov", "sen", "rep", "vs", "e.g", "i.e", "cf", "approx", "ca", "fig",
    "figs", "vol", "pp", "inc", "ltd", "corp", "dept", "ave", "blvd", "jan", "feb", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "tbsp", "tsp", "viz",
})
# An end only when a capitalised word follows ("... and so on, etc. Then ...").
MAYBE_ENDS = frozenset({"etc", "a.m", "p.m"})


def is_emoji(char: str) -> bool:
    """Pictographs, symbols and their joiners / modifiers / variation selectors."""
    code = ord(char)
    if code in (0x200D, 0xFE0F, 0xFE0E, 0x20E3) or 0x1F3FB <= code <= 0x1F3FF:
        return True
    if 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF or 0x1F1E6 <= code <= 0x1F1FF:
        return True
    return unicodedata.category(char) == "So"


def sentence_ends(text: str, final: bool = False) -> list[int]:
    """Offsets just past each confirmed sentence end (closers and trailing emoji included,
    the whitespace after it not), in increasing order."""
    ends: list[int] = []
    n = len(text)
    i = 0
    while i < n:
        char = text[i]
        if char == "\n":
            if text[ends[-1] if ends else 0:i].strip():
                ends.append(i)
            i += 1
            continue
        if char in CJK_TERMINATORS:
            j = _skip(text, i + 1, CJK_TERMINATORS | CLOSERS)
            if j < n or final:
                ends.append(j)
            i = j
            continue
        if char in TERMINATORS:
            j = _skip(text, i + 1, TERMINATORS)
            run = text[i:j]
            j = _skip(text, j, CLOSERS)
            end = _confirmed(text, i, j, run, final)
            if end is not None:
                ends.append(end)
            i = max(j, end or 0)
            continue
        if is_emoji(char) and i > 0 and text[i - 1].isspace():
            j = _skip_emoji(text, i)
            after = _skip(text, j, _BLANKS)
            if j < after < n and text[after].isupper():
                ends.append(j)
            i = j
            continue
        i += 1
    return ends


def _skip(text: str, i: int, chars: frozenset[str]) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _skip_emoji(text: str, i: int) -> int:
    while i < len(text) and is_emoji(text[i]):
        i += 1
    return i


def _confirmed(text: str, start: int, j: int, run: str, final: bool) -> int | None:
    """The end offset of the Latin terminator run ``run`` at ``text[start:]`` whose closers
    end at ``j``, or None when it is not (or not yet) a sentence end."""
    n = len(text)
    if not text[:start].strip():
        return None  # punctuation with no sentence before it
    if j >= n:
        return j if final else None
    if not text[j].isspace():
        return None  # 3.14, example.com, U.S.A, "?!" still arriving
    k = _skip(text, j, _BLANKS)
    if k < n and is_emoji(text[k]):  # an emoji after the end belongs to its sentence
        e = _skip_emoji(text, k)
        if e >= n and not final:
            return None  # the emoji run may go on
        j, k = e, _skip(text, e, _BLANKS)
    nxt = text[k] if k < n else ""
    if run[0] in "!?":
        return j
    if not nxt and not final:
        return None  # the next word's case decides, and it has not arrived
    upper = nxt.isupper() or nxt in ("", "\n")
    if run != ".":  # an ellipsis: "Well... I think" ends, "Hmm... let me see" does not
        return j if upper else None
    return j if _period_ends(text, start, nxt, upper) else None


def _period_ends(text: str, start: int, nxt: str, upper: bool) -> bool:
    """Whether the single period at ``text[start]`` ends a sentence, given the next
    character ``nxt`` ("" at the end) and whether it starts a new sentence (``upper``)."""
    word = _word_before(text, start).lower()
    if word in ABBREVIATIONS:
        return False
    if len(word) == 1 and text[start - 1].isupper():
        return False  # an initial: J. R. R. Tolkien
    if word in MAYBE_ENDS or "." in word:  # etc., U.S., a URL's last dot
        return upper
    return not (nxt.isalpha() and nxt.islower())


def _word_before(text: str, end: int) -> str:
    """The token before ``text[end]``, without leading brackets or quotes."""
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end].lstrip("\"'“‘([{«")


def last_end(text: str, final: bool = False) -> int:
    """The offset just past the last confirmed sentence end, 0 when there is none."""
    ends = sentence_ends(text, final)
    return ends[-1] if ends else 0


def ends_sentence(text: str) -> bool:
    """Does ``text`` (complete: nothing follows) end at a sentence end?"""
    stripped = text.rstrip()
    return bool(stripped) and last_end(stripped, final=True) == len(stripped)
