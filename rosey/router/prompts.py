"""Prompt assembly and reply post-processing. Pure."""

from __future__ import annotations

import re
from pathlib import Path

from rosey.protocol import Turn


class _SafeDict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def load_system_prompt(inline: str, file: str, default: str) -> str:
    """``system_prompt_file`` wins over ``system_prompt``; the default when both are empty."""
    if file:
        return Path(file).read_text(encoding="utf-8").strip()
    return inline.strip() or default


def render_system_prompt(template: str, **values: str) -> str:
    """Fill ``{bot_name}``, ``{channel}``, ``{user}``, ``{now_playing}``; leave other braces."""
    return template.format_map(_SafeDict(values))


def build_turns(system: str, history: list[Turn], message: str, user: str) -> list[Turn]:
    turns = [Turn("system", system)]
    turns.extend(history)
    turns.append(Turn("user", f"{user}: {message}"))
    return turns


_MD_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"```(?:\w+\n)?(.*?)```", re.DOTALL), r"\1"),
    (re.compile(r"\*\*(.+?)\*\*"), r"\1"),
    (re.compile(r"__(.+?)__"), r"\1"),
    (re.compile(r"(?<!\w)\*(\S(?:.*?\S)?)\*(?!\w)"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"^\s*#{1,6}\s+", re.MULTILINE), ""),
    (re.compile(r"^\s*[-*+]\s+", re.MULTILINE), "- "),
    (re.compile(r"\[([^\]]+)\]\((\S+?)\)"), r"\1 (\2)"),
]


def strip_markdown(text: str) -> str:
    """Remove markdown that CyTube's filters would mangle (``**``, backticks, headings)."""
    for pattern, replacement in _MD_RULES:
        text = pattern.sub(replacement, text)
    return text


def postprocess(text: str, max_chars: int) -> str:
    """Plain, bounded text.  A leading '/' is left to the conn, which escapes every
    part it sends (replies are addressed anyway, so they rarely start with one)."""
    text = " ".join(strip_markdown(text).split())
    if len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars - 1)
        text = text[: cut if cut > max_chars // 2 else max_chars - 1].rstrip() + "…"
    return text


def address(user: str, text: str) -> str:
    return f"{user}: {text}"
