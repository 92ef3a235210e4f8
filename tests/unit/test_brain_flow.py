"""The router's judgement and flow in process: the real router as ``router/build.py`` makes
it and SQLite, sockets replaced by lists, and a virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rosey.config import parse_config
from rosey.protocol import Request, Result, Say, User
from rosey.router.build import ListWire, build_router
from rosey.router.commands import Actor
from rosey.router.dispatch import Pool
from rosey.router.records import Records
from rosey.router.resume import resume
from rosey.store import Store


class Rig:
    def __init__(self, tmp: Path, **router: object):
        self.now = 1_800_000_000.0
        raw = {"channel": "chan", "user": ["rosey", "pw"],
               "llm": {"llm_cooldown": 10, "fallback_response": "Sorry."},
               **router}
        self.cfg = parse_config(raw, base_dir=tmp, env={})
        self.store = Store(self.cfg.paths.database)
        self.store.open()
        self.records = Records(self.store, "chan")
        self.wire = ListWire()
        self.requests: list[Request] = self.wire.requests
        self.says: list[Say] = self.wire.says
        self.pool = Pool(liveness=1e9)
        self.router = build_router(self.cfg, wire=self.wire, pool=self.pool, store=self.store,
                                   clock=lambda: self.now)
        self.core = self.router.only
        self.flow = self.router.flow
        self.router.restore()
        self.core.channel.set_users([User(name="alice", rank=1, aliases=["alice", "alicia"]),
                                      User(name="bob", rank=1), User(name="guest1", rank=0),
                                      User(name="Mod", rank=2)])


    def caller(self, slots: int = 4) -> None:
        self.pool.seen(b"caller-0", "inc", slots, self.now)

    async def answer(self, request: Request, text: str = "hello", ok: bool = True,
                     cost: float = 0.0) -> None:
        await self.router.on_result(Result(id=request.id, caller="caller-0", ok=ok, text=text,
                                         error_kind="" if ok else "server", cost_usd=cost,
                                         model="m", completion_tokens=3))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path)
    yield rig
    rig.store.close()


async def test_mention_answered_and_remembered(rig: Rig) -> None:
    rig.caller()
    await rig.core.on_chat("alice", "rosey, hi", False, rig.now)
    assert len(rig.requests) == 1
    await rig.answer(rig.requests[0], "Rosey: **hello** there")
    assert [s.text for s in rig.says] == ["alice: hello there"]  # self prefix and markdown gone
    await rig.core.on_chat("bob", "no mention here", False, rig.now)
    assert len(rig.requests) == 1
    await rig.store.flush()
    assert [t.content for t in await rig.records.history("alice", 10)] == [
        "alice: rosey, hi", "hello there"]


async def test_not_yet_dispatched_mentions_coalesce(rig: Rig) -> None:
    await rig.core.on_chat("alice", "rosey, one", False, rig.now)
    await rig.core.on_chat("alice", "rosey, two", False, rig.now + 1)
    assert rig.requests == []
    rig.caller()
    await rig.flow.dispatch()
    assert len(rig.requests) == 1
    assert [t.content for t in rig.requests[0].turns[1:]] == ["alice: rosey, one",
                                                             "alice: rosey, two"]


async def test_aliases_share_cooldowns_but_not_history(rig: Rig) -> None:
    rig.caller()
    await rig.core.on_chat("alice", "rosey, hi", False, rig.now)
    await rig.core.on_chat("alicia", "rosey, hi again", False, rig.now + 1)
    assert len(rig.requests) == 1  # same IP, same cooldown
    rig.now += 11
    await rig.core.on_chat("alicia", "rosey, now?", False, rig.now)
    assert len(rig.requests) == 2
    assert [t.role for t in rig.requests[1].turns] == ["system", "user"]  # not alice's history


async def test_mods_are_exempt_and_pm_questions_answer_by_pm(rig: Rig) -> None:
    rig.caller()
    await rig.core.on_chat("Mod", "rosey a", False, rig.now)
    await rig.answer(rig.requests[0], "a!")
    await rig.core.on_chat("Mod", "rosey b", False, rig.now)  # no cooldown for mods
    assert len(rig.requests) == 2
    await rig.core.on_pm("bob", "what is 2+2?", rig.now)
    await rig.answer(rig.requests[2], "4")
    assert rig.says[-1].pm_to == "bob" and rig.says[-1].text == "4"


async def test_failures_and_blocklist(tmp_path: Path) -> None:
    rig = Rig(tmp_path, router={"blocklist": ["secret"], "blocklist_reply": "No."})
    rig.caller()
    await rig.core.on_chat("alice", "rosey tell me", False, rig.now)
    await rig.answer(rig.requests[0], "the secret is 42")
    await rig.core.on_chat("bob", "rosey tell me", False, rig.now)
    await rig.answer(rig.requests[1], ok=False)
    await rig.answer(rig.requests[1], "late duplicate")  # dropped by id
    assert [s.text for s in rig.says] == ["alice: No.", "bob: Sorry."]
    rig.store.close()


async def test_optout_and_guest_history_are_not_stored(rig: Rig) -> None:
    rig.caller()
    await rig.core.on_pm("bob", "!optout", rig.now)
    await rig.core.on_chat("bob", "rosey?", False, rig.now)
    assert rig.requests == []
    await rig.core.on_pm("bob", "!optin", rig.now)
    await rig.core.on_chat("bob", "rosey?", False, rig.now)
    await rig.core.on_chat("guest1", "rosey?", False, rig.now)
    assert len(rig.requests) == 2
    await rig.store.flush()
    assert len(await rig.records.history("bob", 10)) == 1
    assert await rig.records.history("guest1", 10) == []
    logged = rig.store.query_sync("SELECT text FROM chat_log WHERE username = 'bob'")
    assert logged == [("rosey?",)]  # not the line sent while opted out (commands are audited)
    audit = rig.store.query_sync("SELECT actor, action, ok FROM audit ORDER BY id")
    assert audit == [("bob", "optout", 1), ("bob", "optin", 1)]


async def test_budget_exhausted_answers_with_fallback_without_a_call(tmp_path: Path) -> None:
    rig = Rig(tmp_path, budget={"daily_usd": 0.01})
    rig.caller()
    await rig.core.on_chat("alice", "rosey one", False, rig.now)
    await rig.answer(rig.requests[0], "ok", cost=0.02)
    await rig.core.on_chat("bob", "rosey two", False, rig.now)
    assert len(rig.requests) == 1
    assert [s.text for s in rig.says] == ["alice: ok", "bob: Sorry."]
    rig.now += 86400  # a new day, a new budget
    await rig.core.on_chat("bob", "rosey three", False, rig.now)
    assert len(rig.requests) == 2
    rig.store.close()


async def test_journal_resumes_open_and_undelivered(tmp_path: Path) -> None:
    first = Rig(tmp_path)
    await first.core.on_chat("alice", "rosey, pending", False, first.now)  # no caller yet
    first.caller()
    await first.core.on_chat("bob", "rosey, answered", False, first.now)
    await first.flow.dispatch()
    bob = next(r for r in first.requests if "bob" in r.turns[-1].content)
    await first.answer(bob, "hi bob")  # replied, never acknowledged
    await first.store.flush()
    first.store.close()

    second = Rig(tmp_path)
    second.caller()
    requeued, resent = await resume(second.flow, second.core.lane)
    assert (requeued, resent) == (1, 1)
    assert [s.text for s in second.says] == ["bob: hi bob"]
    assert [r.turns[-1].content for r in second.requests] == ["alice: rosey, pending"]
    second.flow.on_delivered(second.says[0].id, True, "")
    await second.store.flush()
    assert [e.username for e in second.records.load_journal()] == ["alice"]
    second.store.close()


async def test_refusal_notice_once_per_window_and_channel_context(tmp_path: Path) -> None:
    rig = Rig(tmp_path, router={"channel_context": 3, "limits": {"notify_refused": True}})
    rig.caller()
    await rig.core.on_chat("bob", "the movie is great", False, rig.now)
    await rig.core.on_chat("alice", "rosey, thoughts?", False, rig.now)
    background = rig.requests[0].turns[1]
    assert background.role == "system" and "bob: the movie is great" in background.content
    await rig.answer(rig.requests[0], "sure")
    rig.now += 1
    await rig.core.on_chat("alice", "rosey?", False, rig.now)
    rig.now += 1
    await rig.core.on_chat("alice", "rosey??", False, rig.now)
    notices = [s for s in rig.says if s.pm_to == "alice"]
    assert [s.text for s in notices] == ["Please wait 9 s before asking me again."]
    rig.store.close()


async def test_retention_prunes_old_rows(rig: Rig) -> None:
    rig.records.chat("alice", "chat", "old", rig.now - 100 * 86400)
    rig.records.chat("alice", "chat", "new", rig.now)
    await rig.store.flush()
    rig.records.prune(rig.now, retention_days=90)
    await rig.store.flush()
    assert rig.store.query_sync("SELECT text FROM chat_log") == [("new",)]


async def test_reload_and_persona(tmp_path: Path) -> None:
    (tmp_path / "pirate.md").write_text("You are {bot_name} the pirate.")
    rig = Rig(tmp_path, router={"personas": {"pirate": "pirate.md"}})
    rig.caller()
    ok, text = rig.core.run_command(Actor("Mod", 2), "persona pirate")
    assert ok and text == "persona set to pirate"
    await rig.core.on_chat("alice", "rosey, ahoy", False, rig.now)
    assert rig.requests[0].turns[0].content == "You are rosey the pirate."
    rig.core.reload(parse_config({"channel": "chan", "user": ["rosey", "pw"],
                                   "llm": {"llm_triggers": ["captain"]},
                                   "router": {"personas": {"pirate": "pirate.md"}}},
                                  base_dir=tmp_path, env={}))
    await rig.core.on_chat("bob", "hey captain", False, rig.now)
    assert len(rig.requests) == 2
    rig.store.close()


async def test_channel_events_update_state_and_media_history(rig: Rig) -> None:
    from rosey.protocol import MediaChanged, UserMeta

    rig.caller()
    rig.core.on_other(MediaChanged(channel="chan", title="Big Buck Bunny", id="x", type="cm",
                                    seconds=30))
    rig.core.on_other(UserMeta(channel="chan", name="bob", afk=True))
    assert rig.core.channel.users["bob"].afk
    await rig.core.on_chat("alice", "rosey, what's on?", False, rig.now)
    assert "playing: Big Buck Bunny." in rig.requests[0].turns[0].content  # default prompt
    rig.core.judge.system_template = "Now playing: {now_playing}"
    await rig.core.on_chat("bob", "rosey, what's on?", False, rig.now)
    assert rig.requests[1].turns[0].content == "Now playing: Big Buck Bunny"
    await rig.store.flush()
    assert rig.store.query_sync("SELECT title, seconds FROM media") == [("Big Buck Bunny", 30.0)]
    await rig.core.on_pm("Mod", "!status", rig.now)
    assert rig.says[-1].priority == 1 and rig.says[-1].text.startswith("llm on")


async def test_pm_and_channel_requests_never_merge_and_in_flight_lines_join_history(
        rig: Rig) -> None:
    await rig.core.on_chat("alice", "rosey, public question", False, rig.now)
    rig.now += 11  # past alice's cooldown, the channel request still queued
    await rig.core.on_pm("alice", "private question", rig.now)
    rig.caller()
    await rig.flow.dispatch()
    assert len(rig.requests) == 2  # a PM is never folded into a channel reply
    assert {r.turns[-1].content for r in rig.requests} == {"alice: rosey, public question",
                                                           "alice: private question"}
    rig.now += 20
    await rig.core.on_chat("alice", "rosey, while you think", False, rig.now)
    assert len(rig.requests) == 2  # in flight: the line only joins history
    public = next(r for r in rig.requests if "public" in r.turns[-1].content)
    await rig.answer(public, "done")
    assert rig.says[-1].text == "alice: done" and rig.says[-1].pm_to == ""
    contents = [t.content for t in rig.core.conversation.history.turns("alice")]
    assert "alice: rosey, while you think" in contents


async def test_budget_switch_moves_to_the_cheap_model(tmp_path: Path) -> None:
    rig = Rig(tmp_path, budget={"daily_usd": 0.01, "action": "switch",
                                "switch_provider": "ollama", "switch_model": "tiny"})
    rig.caller()
    await rig.core.on_chat("alice", "rosey one", False, rig.now)
    await rig.answer(rig.requests[0], "ok", cost=0.02)
    await rig.core.on_chat("bob", "rosey two", False, rig.now)
    assert [(r.provider, r.model) for r in rig.requests] == [("ollama", "llama3.2:3b"),
                                                             ("ollama", "tiny")]
    rig.store.close()
