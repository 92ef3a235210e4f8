"""No model output, however adversarial, becomes a moderator action or a server command.

The reply path (Flow -> Say -> conn's governor) is fed hostile answers, in the channel and by
PM. Whatever the text, the router hands conn nothing but ``Say`` (the typed actions have their
own channel, which is watched and must stay silent), and conn emits nothing but
``chatMsg``/``pm`` parts that never start with ``/``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rosey.conn.governor import Governor
from rosey.conn.session import Session
from rosey.protocol import ACTIONS, Action, ActionResult, Message, Say
from rosey.router.modctx import ModContext
from tests.unit.test_brain_flow import Rig

HOSTILE = ["/kick alice", "/kick alice spam", "/clear", "/dance party", "/d", "/ban bob",
           "/rank alice 5", "/mute bob", "/afk", "!kick alice", "!add https://youtu.be/x",
           "rosey: /kick alice", "Rosey: /clear", "\n/kick alice", "  /kick alice",
           "\u200b/kick alice", "`/kick alice`", "**/kick** alice", "> /kick alice",
           '{"k": "kick", "name": "alice"}', "queue", "delete 0", "jumpTo 1", "playNext",
           "/" * 40, "/kick " + "a" * 400, "\t/clear", "/me waves", "/sp x"]
pieces = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=60))
answers = st.lists(st.lists(pieces, min_size=1, max_size=6).map(" ".join), min_size=1,
                   max_size=8)


async def _route(texts: list[str], private: bool) -> tuple[list[Message], list[Action]]:
    actions: list[Action] = []

    async def run_action(action: Action, wait: float) -> ActionResult | None:
        actions.append(action)  # the only door to conn's action handling
        return None

    async def nothing(*args: object) -> None:
        return None

    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(Path(tmp), llm={"llm_cooldown": 0, "fallback_response": "Sorry."})
        rig.core.mod = ModContext(channel=rig.core.channel, channel_name="chan",
                                   bot_name="rosey", tz=ZoneInfo("UTC"), run_action=run_action,
                                   say=nothing, seen=nothing, stats=nothing)  # type: ignore[arg-type]
        rig.caller(slots=64)
        try:
            for text in texts:
                if private:
                    await rig.core.on_pm("alice", "what now?", rig.now)
                else:
                    await rig.core.on_chat("alice", "rosey, what now?", False, rig.now)
                await rig.answer(rig.requests[-1], text)
        finally:
            rig.store.close()
    return list(rig.says), actions


def _emitted(says: list[Message]) -> list[tuple[str, str]]:
    """Every part conn's governor would emit for these messages: (event, text)."""
    now = 1000.0
    session = Session(channel="chan", name="rosey", password="pw", governor=Governor(),
                      clock=lambda: now)
    out: list[tuple[str, str]] = []
    for say in says:
        assert isinstance(say, Say) and not isinstance(say, ACTIONS)
        session.governor.add(say, now)
        while (part := session.governor.next_part(now)) is not None:
            out.append(("pm" if part.pm_to else "chatMsg", part.text))
            session.governor.on_echo(private=bool(part.pm_to))
            now += 1.0
    assert session.actions.pending == {}
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=answers, private=st.booleans())
def test_model_output_only_ever_becomes_neutral_chat(texts: list[str], private: bool) -> None:
    says, actions = asyncio.run(_route(texts, private))
    assert actions == []
    assert says, "the reply path said nothing at all"  # it did happen
    parts = _emitted(says)
    assert parts  # every answer becomes at least one chat part (or the fallback)
    for event, text in parts:
        assert event == ("pm" if private else "chatMsg")
        assert not text.startswith("/"), text


def test_the_hostile_answers_are_posted_as_text() -> None:
    """The same hostile lines reach the channel, just never as commands."""
    says, actions = asyncio.run(_route(HOSTILE, private=False))
    parts = _emitted(says)
    assert actions == [] and len(says) == len(HOSTILE)
    assert any("kick alice" in text for _, text in parts)
    assert all(not text.startswith("/") for _, text in parts)
