"""Model output never runs as a CyTube command: not in a later part of a long answer (the
first part starts with ``user: ``), not in a PM (never addressed), not in a short answer.

Breaking conn's escape (``neutralise_command`` returning its input) makes this fail: the
server then runs the second and third parts of the long answer."""

from __future__ import annotations

import pytest

from fakes import command_replies as cr
from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests.e2e.harness import BOT, Rosey, deployed

USERS = ["alice", "bob", "carol", "dave", "erin", "frank"]


@pytest.mark.timeout(90)
async def test_model_commands_are_posted_escaped_never_run(cytube: FakeCytube) -> None:
    for user in USERS[2:]:
        cytube.add_virtual_user(user, rank=1)
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.reply = lambda body: cr.answer(body, cytube.max_length)
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0})
        async with deployed(rosey, cytube):
            got = await cr.ask(cytube, BOT, USERS, timeout=15)
            # Everything arrived (parts 2 and 3 of the long answer and both PMs escaped) ...
            assert (got.lines, got.pms, got.escaped) == (cr.CHANNEL_LINES, cr.PM_LINES, 4), \
                got.summary
            # ... and nothing ran or was posted as a command.
            assert (got.ran, got.leading_slash) == (0, 0), got.summary
            assert llm.calls == 6
