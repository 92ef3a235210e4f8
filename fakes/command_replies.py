"""Model answers that are CyTube chat commands (tests/e2e/test_no_command_posted.py and
bench/scenarios.py).

The server runs a chat line that starts with ``/`` as a command with the bot's rank
(docs/cytube/PROTOCOL.md §6.3); conn escapes every part that would with a leading space.
Channel replies start with ``user: ``, so a short answer such as ``/kick alice`` cannot test
that: only a later part of a long answer, or a PM (never addressed), can start with ``/``.
These answers make all three happen.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from fakes.cytube import FakeCytube
from rosey.conn.split import split_message
from rosey.router.prompts import address

SHORT = {"say kick": "/kick alice", "say clear": "/clear", "say dance": "/dance party"}
PM = {"pm kick": "/kick alice", "pm clear": "/clear"}
LONG = "say a long one"


def _pad(length: int) -> str:
    """Words (no sentence end, where the splitter might prefer to cut) of exactly ``length``."""
    return ("yes " * (length // 4 + 2))[: length - 1] + "s"


def long_answer(user: str, limit: int) -> str:
    """An answer whose addressed reply splits in three parts at ``limit``, the second starting
    with ``/kick alice`` and the third with ``/clear``."""
    budget = limit - 1  # the splitter keeps one unit for the escaping space
    second = "/kick alice "
    text = (f"{_pad(budget - len(address(user, '')))} {second}{_pad(budget - len(second))}"
            " /clear the chat now")
    parts = [p.lstrip() for p in split_message(address(user, text), limit, 3)]
    assert [p.split()[0] for p in parts[1:]] == ["/kick", "/clear"], parts
    return text


def answer(body: dict[str, Any], limit: int) -> str:
    """The fake model's answer to ``user: <prompt>`` (the last user turn)."""
    users = [m["content"] for m in body["messages"] if m.get("role") == "user"]
    user, _, prompt = users[-1].partition(": ")
    for table in (SHORT, PM):
        for key, reply in table.items():
            if key in prompt:
                return reply
    return long_answer(user, limit) if LONG in prompt else "ok"


@dataclass(frozen=True)
class Outcome:
    ran: int  # chat commands the server ran for the bot
    leading_slash: int  # bot lines and PMs posted starting with "/"
    escaped: int  # bot lines and PMs starting with " /" (the escape at work)
    lines: int
    pms: int

    @property
    def summary(self) -> str:
        return (f"{self.ran} ran as commands, {self.leading_slash} posted starting with '/', "
                f"{self.escaped} escaped; {self.lines} channel lines, {self.pms} PMs")


CHANNEL_LINES = len(SHORT) + 3  # one part per short answer, three for the long one
PM_LINES = len(PM)


async def ask(fake: FakeCytube, bot: str, users: list[str], timeout: float) -> Outcome:
    """Mention the bot from ``users`` (one per prompt, six) and count what it posts."""
    assert len(users) == len(SHORT) + 1 + len(PM), users
    lines, pms, ran = len(fake.chat_log), len(fake.pm_log), len(fake.commands_run)
    for user, prompt in zip(users, [*SHORT, LONG], strict=False):
        await fake.say_as(user, f"rosey {prompt}")
    for user, prompt in zip(users[len(SHORT) + 1:], PM, strict=True):
        await fake.pm_as(user, bot, prompt)

    def posted() -> tuple[list[str], list[str]]:
        return ([e["msg"] for e in fake.chat_log[lines:] if e["username"] == bot],
                [e["msg"] for e in fake.pm_log[pms:] if e["username"] == bot])

    with contextlib.suppress(TimeoutError):  # what a broken escape swallows never arrives
        await fake.wait_for(lambda: [len(x) for x in posted()] == [CHANNEL_LINES, PM_LINES],
                            timeout=timeout)
    chat, pm = posted()
    return Outcome(ran=sum(1 for who, _ in fake.commands_run[ran:] if who == bot),
                   leading_slash=sum(m.startswith("/") for m in chat + pm),
                   escaped=sum(m.startswith(" /") for m in chat + pm),
                   lines=len(chat), pms=len(pm))
