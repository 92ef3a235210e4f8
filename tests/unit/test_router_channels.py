"""One router, several channels (issue 15): each channel's own core (limits, history,
toggles, persona), routed by the message's channel; ``rosey ctl --channel``; a re-read
config adding and removing channels.  The real router as ``router/build.py`` makes it,
SQLite, a virtual clock, sockets replaced by lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rosey import metrics
from rosey.config import Config, channel_configs, parse_config
from rosey.protocol import Chat, Delivered, Pm, Ready, Request, Result, Say, User, UserList
from rosey.router.build import ListWire, build_router
from rosey.router.dispatch import Pool
from rosey.store import Store


def channel_cfg(tmp: Path, name: str, **llm: Any) -> Config:
    raw = {"channel": name, "user": ["rosey", "pw"],
           "llm": {"llm_cooldown": 10, "fallback_response": "Sorry.", **llm}}
    return parse_config(raw, base_dir=tmp, env={})


class Channels:
    def __init__(self, tmp: Path, **top: Any) -> None:
        self.now = 1_800_000_000.0
        self.tmp = tmp
        # The operator's shape: a channels list, each entry overriding the top level.
        self.cfg = parse_config({
            "user": ["rosey", "pw"],
            "llm": {"llm_cooldown": 10, "fallback_response": "Sorry."},
            "channels": [
                {"channel": "movies",
                 "llm": {"system_prompt": "You are {bot_name} of movies."}},
                {"channel": "anime",
                 "llm": {"system_prompt": "You are {bot_name}-chan.", "llm_cooldown": 5}}],
            **top}, base_dir=tmp, env={})
        self.store = Store(self.cfg.paths.database)
        self.store.open()
        self.pool = Pool(liveness=1e9)
        self.pool.seen(b"caller-0", "inc", 16, self.now)
        self.wire = ListWire()
        self.requests: list[Request] = self.wire.requests
        self.says: list[Say] = self.wire.says
        self.router = build_router(self.cfg, wire=self.wire, pool=self.pool, store=self.store,
                                   clock=lambda: self.now)
        self.router.restore()

    async def chat(self, channel: str, user: str, text: str) -> None:
        await self.router.on_conn(Chat(channel=channel, username=user, text=text, time=0,
                                       received_at=self.now))

    async def answer(self, request: Request, text: str, cost: float = 0.0) -> None:
        await self.router.on_result(Result(id=request.id, caller="caller-0", ok=True,
                                           text=text, cost_usd=cost))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Channels]:
    rig = Channels(tmp_path)
    yield rig
    rig.store.close()


async def test_each_channel_answers_in_its_own_channel_with_its_own_persona(
        rig: Channels) -> None:
    await rig.chat("movies", "alice", "rosey, hi")
    await rig.chat("anime", "bob", "rosey, hi")
    assert [r.turns[0].content for r in rig.requests] == ["You are rosey of movies.",
                                                          "You are rosey-chan."]
    await rig.answer(rig.requests[1], "konnichiwa")
    await rig.answer(rig.requests[0], "hello")
    assert [(s.channel, s.text) for s in rig.says] == [("anime", "bob: konnichiwa"),
                                                      ("movies", "alice: hello")]
    await rig.store.flush()
    rows = rig.store.query_sync("SELECT channel, username, role FROM llm_conversations "
                                "ORDER BY id")
    assert sorted(rows) == [("anime", "bob", "assistant"), ("anime", "bob", "user"),
                            ("movies", "alice", "assistant"), ("movies", "alice", "user")]


def refused(channel: str) -> float:
    return float(metrics.RATE_LIMITED.labels(channel, "user")._value.get())


async def test_a_cooldown_in_one_channel_does_not_touch_another(rig: Channels) -> None:
    assert list(rig.router.cores) == ["movies", "anime"]
    before = refused("movies"), refused("anime")
    await rig.chat("movies", "alice", "rosey, one")
    await rig.answer(rig.requests[0], "ok")
    rig.now += 1
    await rig.chat("movies", "alice", "rosey, two")  # her 10 s cooldown in movies
    assert len(rig.requests) == 1
    assert (refused("movies"), refused("anime")) == (before[0] + 1, before[1])
    await rig.chat("anime", "alice", "rosey, one")  # the same name in anime: answered
    assert len(rig.requests) == 2 and rig.requests[1].turns[-1].content == "alice: rosey, one"
    await rig.answer(rig.requests[1], "ok")
    rig.now += 5  # anime's own cooldown is 5 s, movies' 10 s
    await rig.chat("anime", "alice", "rosey, two")
    await rig.chat("movies", "alice", "rosey, three")
    assert len(rig.requests) == 3 and rig.requests[2].turns[-1].content == "alice: rosey, two"
    assert (refused("movies"), refused("anime")) == (before[0] + 2, before[1])


async def test_ctl_needs_a_channel_when_there_are_several(rig: Channels) -> None:
    ok, text = await rig.router.command("", "llm off")
    assert not ok and "several channels" in text and "anime, movies" in text
    ok, text = await rig.router.command("nope", "status")
    assert not ok and "no channel 'nope'" in text
    ok, text = await rig.router.command("ANIME", "llm off")  # names without case, as config
    assert ok and text == "LLM replies disabled"
    await rig.chat("anime", "alice", "rosey?")
    await rig.chat("movies", "alice", "rosey?")
    assert [r.turns[0].content for r in rig.requests] == ["You are rosey of movies."]


async def test_a_moderators_pm_applies_to_the_channel_it_came_from(rig: Channels) -> None:
    for channel in ("movies", "anime"):
        await rig.router.on_conn(UserList(channel=channel, users=[User(name="Mod", rank=2)]))
    await rig.router.on_conn(Pm(channel="anime", username="Mod", text="!llm off", time=0))
    assert [(s.channel, s.pm_to, s.text) for s in rig.says] == [
        ("anime", "Mod", "LLM replies disabled")]
    assert not rig.router.cores["anime"].conversation.toggles.llm_enabled
    assert rig.router.cores["movies"].conversation.toggles.llm_enabled


async def test_a_reread_config_adds_and_drops_channels_and_keeps_the_others(
        rig: Channels) -> None:
    await rig.chat("movies", "alice", "rosey, one")
    await rig.chat("anime", "bob", "rosey, one")  # in flight when anime is removed
    movies = rig.router.cores["movies"]
    music = channel_cfg(rig.tmp, "music")
    summary = await rig.router.apply([channel_cfg(rig.tmp, "movies"), music])
    assert summary == "added music, removed anime"
    assert rig.router.cores["movies"] is movies  # the same core: state kept
    rig.now += 1
    await rig.chat("movies", "alice", "rosey, two")  # still in her cooldown
    await rig.chat("anime", "carol", "rosey?")  # anime takes no new mentions
    await rig.chat("music", "dave", "rosey?")
    assert [r.turns[-1].content for r in rig.requests] == [
        "alice: rosey, one", "bob: rosey, one", "dave: rosey?"]
    # anime's answer is still delivered, then anime is dropped
    await rig.answer(rig.requests[1], "bye")
    assert rig.says[-1].channel == "anime" and rig.says[-1].text == "bob: bye"
    await rig.router.tick()
    assert "anime" in rig.router.leaving
    await rig.router.on_conn(Delivered(channel="anime", say_id=rig.says[-1].id, ok=True))
    await rig.router.tick()
    assert "anime" not in rig.router.leaving and set(rig.router.cores) == {"movies", "music"}


async def test_the_budget_is_the_deployments_not_each_channels(tmp_path: Path) -> None:
    rig = Channels(tmp_path, budget={"daily_usd": 0.01})
    try:
        await rig.chat("movies", "alice", "rosey, one")
        await rig.answer(rig.requests[0], "ok", cost=0.02)  # spent in movies
        await rig.chat("anime", "bob", "rosey, one")  # refused in anime too
        assert len(rig.requests) == 1
        assert [(s.channel, s.text) for s in rig.says] == [("movies", "alice: ok"),
                                                          ("anime", "bob: Sorry.")]
        await rig.store.flush()
        again = Channels(tmp_path, budget={"daily_usd": 0.01})  # a restarted router
        try:
            await again.chat("anime", "carol", "rosey?")
            assert again.requests == [] and again.says[-1].text == "carol: Sorry."
        finally:
            again.store.close()
    finally:
        rig.store.close()


async def test_the_days_spend_survives_a_restart_whatever_the_first_channels_timezone(
        tmp_path: Path) -> None:
    # 03:00 UTC is 19:00 of the day before in Los Angeles, movies' (the first channel's) zone;
    # the budget's day is the top level's (UTC).
    cfg = parse_config({"user": ["rosey", "pw"], "budget": {"daily_usd": 1.0},
                        "channels": [{"channel": "movies", "router": {"limits": {
                            "timezone": "America/Los_Angeles"}}}, {"channel": "anime"}]},
                       base_dir=tmp_path, env={})
    now = datetime(2027, 3, 10, 3, 0, tzinfo=UTC).timestamp()

    def started(channels: list[str]) -> Any:
        pool = Pool(liveness=1e9)
        pool.seen(b"caller-0", "inc", 4, now)
        router = build_router(cfg, wire=ListWire(), pool=pool, store=store, clock=lambda: now,
                              channels=[c for c in channel_configs(cfg) if c.channel in channels])
        router.restore()
        return router

    store = Store(cfg.paths.database)
    store.open()
    try:
        router = started(["movies", "anime"])
        await router.on_conn(Chat(channel="anime", username="a", text="rosey hi", time=0,
                                  received_at=now))
        await router.on_result(Result(id=router.flow.wire.requests[0].id, caller="caller-0",
                                      ok=True, text="hi", cost_usd=0.9))
        assert router.budget.spent(now)[0] == 0.9
        await store.flush()
        assert started(["movies", "anime"]).budget.spent(now) == (0.9, 0.9)
        # anime removed from the config: its money was spent today all the same.
        assert started(["movies"]).budget.spent(now) == (0.9, 0.9)
    finally:
        store.close()


async def test_a_shed_job_whose_late_result_comes_first_still_gets_its_fallback(
        tmp_path: Path) -> None:
    """movies' two requests, requeued when their caller restarted, fill the queue; one is
    evicted for anime's; the old caller's Result for it arrives before the tick sheds it."""
    now = 1_800_000_000.0
    cfg = Channels(tmp_path).cfg
    store = Store(cfg.paths.database)
    store.open()
    try:
        wire, pool = ListWire(), Pool(liveness=1e9, queue_max=2)
        pool.seen(b"caller-0", "inc", 2, now)
        router = build_router(cfg, wire=wire, pool=pool, store=store, clock=lambda: now)
        router.restore()
        for user in ("alice", "carol"):
            await router.on_conn(Chat(channel="movies", username=user, text="rosey, hi",
                                      time=0, received_at=now))
        assert len(wire.requests) == 2 and len(pool.in_flight) == 2
        await router.on_work(b"caller-0", Ready(caller="caller-0", incarnation="new", slots=0),
                             now)
        assert len(pool.queue) == 2  # both requeued, waiting
        await router.on_conn(Chat(channel="anime", username="bob", text="rosey, hi", time=0,
                                  received_at=now))
        [movies, anime] = [j.request.id for j in pool.queue]  # the newest movies' was evicted
        [evicted] = [r for r in wire.requests if r.id not in (movies, anime)]
        user = evicted.turns[-1].content.split(":")[0]
        await router.on_result(Result(id=evicted.id, caller="caller-0", ok=True, text="late"))
        assert wire.says == []  # not answered by the late result ...
        await router.tick()
        assert [(s.channel, s.text) for s in wire.says] == [("movies", f"{user}: Sorry.")]
        await router.on_conn(Delivered(channel="movies", say_id=wire.says[0].id, ok=True))
        await store.flush()
        # ... but by its fallback, and its journal row is closed (the others stay open).
        assert [[e.id for e in router.cores[name].records.load_journal()]
                for name in ("movies", "anime")] == [[movies], [anime]]
    finally:
        store.close()
