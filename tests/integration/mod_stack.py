"""The real router and conn services in one event loop, against the fake CyTube.

A moderator PMs ``!commands`` from a virtual user of the fake; ``ask`` returns the bot's PM
answer, and the fake records every frame the bot sent (``frames_from_clients``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fakes.cytube import FakeCytube
from rosey.config import load_config
from rosey.conn.service import ConnService
from rosey.router.service import RouterService

BOT, PW = "roseybot", "roseybot-test-pw"
CLIP = "http://127.0.0.1:8099/clip-{}.json"
PLAYLIST_FRAMES = ("queue", "delete", "moveMedia", "jumpTo", "playNext", "voteskip", "setTemp")


class ModStack:
    def __init__(self, fake: FakeCytube, **router: Any) -> None:
        self.fake = fake
        self.home = Path(tempfile.mkdtemp(prefix="ms-", dir="/tmp"))
        config = {"domain": fake.url, "channel": fake.channel, "user": [BOT, PW],
                  "llm": {"llm_triggers": ["rosey"]},
                  "router": {"stats_interval": 0, **router},
                  "conn": {"reconnect_min": 0.2},
                  "metrics": {"enabled": False},
                  "paths": {"run_dir": str(self.home / "run"), "data_dir": str(self.home)}}
        (self.home / "config.json").write_text(json.dumps(config))
        self.cfg = load_config(self.home / "config.json", env={})
        self.router = RouterService(self.cfg)
        self.conn = ConnService(self.cfg)
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> ModStack:
        self.tasks = [asyncio.create_task(self.router.run()), asyncio.create_task(self.conn.run())]
        await self.fake.wait_for(lambda: BOT in self.fake.usernames, timeout=15)
        # the router has the userlist, ranks and permissions once the bot's own entry is there
        rank = self.fake.accounts[BOT][2]
        await self.fake.wait_for(lambda: self.router.router.only.channel.bot_rank == rank and
                                 self.router.router.only.channel.permissions != {}, timeout=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        shutil.rmtree(self.home, ignore_errors=True)

    def answers(self, to: str) -> list[str]:
        """The bot's PMs to ``to`` as it sent them (before the server's HTML filters)."""
        return [d["msg"] for who, e, d in self.fake.frames_from_clients
                if who == BOT and e == "pm" and d["to"].lower() == to.lower()]

    async def ask(self, who: str, line: str, timeout: float = 15) -> str:
        before = len(self.answers(who))
        await self.fake.pm_as(who, BOT, line)
        try:
            await self.fake.wait_for(lambda: len(self.answers(who)) > before, timeout)
        except TimeoutError as exc:
            raise AssertionError(f"no answer to {line!r} within {timeout} s") from exc
        return self.answers(who)[before]

    def sent(self, *events: str) -> list[tuple[str, Any]]:
        """Frames the bot sent, of these events (chatMsg included when asked for)."""
        return [(e, d) for who, e, d in self.fake.frames_from_clients
                if who == BOT and e in events]
