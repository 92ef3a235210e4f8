"""From model text to the reply the channel sees. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rosey.router.prompts import postprocess


@dataclass(frozen=True)
class ReplyPolicy:
    bot_name: str
    max_chars: int
    blocklist: tuple[re.Pattern[str], ...] = ()
    blocklist_reply: str = "I'd rather not answer that."

    @classmethod
    def build(cls, bot_name: str, max_chars: int, blocklist: list[str],
              blocklist_reply: str) -> ReplyPolicy:
        return cls(bot_name, max_chars,
                   tuple(re.compile(p, re.IGNORECASE) for p in blocklist), blocklist_reply)


def finish(policy: ReplyPolicy, text: str) -> tuple[str, str]:
    """Returns (text, kind): kind is "llm", "blocked" or "empty" (use the fallback)."""
    text = _drop_self_prefix(policy.bot_name, text.strip())
    text = postprocess(text, policy.max_chars)
    if not text:
        return "", "empty"
    if any(pattern.search(text) for pattern in policy.blocklist):
        return policy.blocklist_reply, "blocked"
    return text, "llm"


def _drop_self_prefix(bot_name: str, text: str) -> str:
    """Models often answer as a chat line, "Rosey: hi"; the bot's name is shown anyway."""
    pattern = re.compile(rf"^\s*\**@?{re.escape(bot_name)}\**\s*[:>-]\s*", re.IGNORECASE)
    return pattern.sub("", text, count=1)
