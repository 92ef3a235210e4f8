"""Decide whether a chat line addresses the bot. Pure; compiled once from config."""

from __future__ import annotations

import re
from dataclasses import dataclass

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+|\bwww\.\S+", re.IGNORECASE)
# Italics come back from CyTube's filter as _x_: look inside them.
_EMPHASIS = re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)")
# A name glued to CJK text ("你好rosey") is still a separate word: those scripts do not
# put spaces between words, so they do not count as part of the name here.
_WORD = r"[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|-"


@dataclass(frozen=True, slots=True)
class TriggerHit:
    kind: str  # "name", "keyword" or "regex"
    trigger: str


class TriggerMatcher:
    """Whole-word, case-insensitive phrases plus ``re:`` regexes.

    ``rosey``, ``@Rosey``, ``Rosey:``, ``ROSEY!`` and ``hey rosey`` match the
    phrase ``rosey``; ``roseybud``, ``primrosey`` and a URL containing it do not.
    """

    def __init__(self, bot_name: str, triggers: list[str], include_bot_name: bool = True):
        self._phrases: list[tuple[str, str, re.Pattern[str]]] = []
        self._regexes: list[tuple[str, re.Pattern[str]]] = []
        if include_bot_name:
            self._add_phrase("name", bot_name)
        for trigger in triggers:
            if trigger.startswith("re:"):
                self._regexes.append((trigger, re.compile(trigger[3:], re.IGNORECASE)))
            else:
                self._add_phrase("keyword", trigger)

    def _add_phrase(self, kind: str, phrase: str) -> None:
        core = phrase.strip().lstrip("@")
        if not core:
            return
        # Word characters around the phrase (including _ and -, which CyTube
        # names allow) mean it is part of another word.
        pattern = re.compile(rf"(?<!{_WORD}){re.escape(core)}(?!{_WORD})", re.IGNORECASE)
        self._phrases.append((kind, phrase, pattern))

    def match(self, text: str) -> TriggerHit | None:
        plain = _EMPHASIS.sub(r" \1 ", _URL.sub(" ", text))
        for kind, phrase, pattern in self._phrases:
            if pattern.search(plain):
                return TriggerHit(kind, phrase)
        for source, regex in self._regexes:
            if regex.search(text):
                return TriggerHit("regex", source)
        return None
