"""Who decides whether a channel answers: the config (``llm.enabled``, ``llm.llm_cooldown``)
or a runtime toggle (``!llm``, ``!cooldown``).  A command stores only what it changed; an
edit of the config's value beats an older runtime toggle, on `rosey apply` and at start.
``!reload`` takes the served channels' new settings but never joins or leaves a channel
(that is `rosey apply`'s, which signals conn too).  The real router, SQLite, a virtual clock."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from rosey.config import Config, channel_configs, parse_config
from rosey.protocol import Chat
from rosey.router.build import ListWire, build_router
from rosey.router.channels import Router
from rosey.router.dispatch import Pool
from rosey.router.records import Records
from rosey.router.service import RouterService
from rosey.store import Store

NOW = 1_800_000_000.0


def raw_config(movies_llm: dict[str, Any], *more: str) -> dict[str, Any]:
    return {"user": ["rosey", "pw"], "llm": {"fallback_response": "Sorry."},
            "channels": [{"channel": "movies", "llm": movies_llm}, {"channel": "anime"},
                         *({"channel": name} for name in more)]}


def config(tmp: Path, movies_llm: dict[str, Any]) -> Config:
    return parse_config(raw_config(movies_llm), base_dir=tmp, env={})


class Deployment:
    """The store survives; ``start`` is a router (re)started on it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store = Store(config(tmp, {}).paths.database)
        self.store.open()

    def start(self, movies_llm: dict[str, Any]) -> Router:
        pool = Pool(liveness=1e9)
        pool.seen(b"caller-0", "inc", 16, NOW)
        router = build_router(config(self.tmp, movies_llm), wire=ListWire(), pool=pool,
                              store=self.store, clock=lambda: NOW)
        router.restore()
        return router

    async def answers(self, router: Router, user: str) -> bool:
        wire = router.flow.wire
        assert isinstance(wire, ListWire)
        before = len(wire.requests)
        await router.on_conn(Chat(channel="movies", username=user, text="rosey, hi", time=0,
                                  received_at=NOW))
        return len(wire.requests) > before


async def test_the_configs_llm_off_wins_after_a_status_command(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    try:
        router = d.start({})
        assert await router.command("movies", "status") == (True, router.cores[
            "movies"].status_line())
        await d.store.flush()
        assert Records(d.store, "movies").load_toggles() == {}  # status changed nothing
        assert await d.answers(router, "alice")
        # The operator turns movies off in the config and applies it ...
        await router.apply(channel_configs(config(tmp_path, {"enabled": False})))
        assert not await d.answers(router, "bob")
        assert await router.command("anime", "status")  # anime is untouched
        # ... or restarts the router.
        await d.store.flush()
        assert not await d.answers(d.start({"enabled": False}), "carol")
    finally:
        d.store.close()


async def test_a_runtime_toggle_lasts_until_the_configs_value_changes(tmp_path: Path) -> None:
    d = Deployment(tmp_path)
    try:
        router = d.start({"llm_cooldown": 10})
        assert (await router.command("movies", "llm off"))[0]
        assert (await router.command("movies", "cooldown 30"))[0]
        await d.store.flush()
        assert Records(d.store, "movies").load_toggles() == {
            "llm_enabled": "0", "llm_enabled.config": "1",
            "cooldown": "30.0", "cooldown.config": "10.0"}
        # Restarted on the same config: the runtime toggles stay.
        router = d.start({"llm_cooldown": 10})
        movies = router.cores["movies"]
        assert not movies.conversation.toggles.llm_enabled
        assert movies.judge.limiter.config.user_cooldown == 30
        assert not await d.answers(router, "alice")
        # An apply that changes the cooldown only: the new cooldown, llm still off.
        await router.apply(channel_configs(config(tmp_path, {"llm_cooldown": 20})))
        movies = router.cores["movies"]
        assert movies.judge.limiter.config.user_cooldown == 20
        assert not await d.answers(router, "alice")
        # A restart on a config whose cooldown changed since `!cooldown 30`: the config's.
        await d.store.flush()
        assert d.start({"llm_cooldown": 20}).cores[
            "movies"].judge.limiter.config.user_cooldown == 20
        assert d.start({"llm_cooldown": 25}).cores[
            "movies"].judge.limiter.config.user_cooldown == 25
        # Off in the config, then on again: the edit wins each time, after a restart too.
        for enabled in (False, True):
            await router.apply(channel_configs(config(tmp_path, {"enabled": enabled})))
            assert await d.answers(router, f"u{enabled}") is enabled
        await d.store.flush()
        assert await d.answers(d.start({"enabled": True}), "bob")
    finally:
        d.store.close()


async def test_reload_takes_new_settings_but_leaves_joining_to_apply(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw_config({})))
    service = RouterService(parse_config(raw_config({}), base_dir=tmp_path, env={}),
                            clock=lambda: NOW, config_path=str(path))
    service.store.open()
    try:
        service.router.restore()
        path.write_text(json.dumps(raw_config({"enabled": False}, "music")))
        reply = service.reload()  # what `!reload` answers
        assert "channels: use rosey apply" in reply and "and channels" not in reply
        await asyncio.gather(*service._applying)
        assert set(service.router.cores) == {"movies", "anime"}  # music not joined ...
        assert not service.router.cores["movies"].conversation.toggles.llm_enabled  # applied
        service.apply_config()  # SIGHUP (`rosey apply`)
        await asyncio.gather(*service._applying)
        assert set(service.router.cores) == {"movies", "anime", "music"}  # ... until apply
    finally:
        service.store.close()
