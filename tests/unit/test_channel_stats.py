"""Channel statistics for a scripted day on a virtual clock: exact counts, peaks, chatters.

The real RouterService handles the conn messages (no sockets: ``on_conn_message`` directly),
writes through its real Store, and the numbers are read back three ways: the `!stats`
summary, the report behind `rosey stats`, and the `rosey stats` command itself.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rosey import metrics
from rosey.config import load_config
from rosey.protocol import (
    Chat,
    MediaChanged,
    Playlist,
    PlaylistCurrent,
    PlaylistEntry,
    Result,
    User,
    UserJoined,
    UserLeft,
    UserList,
)
from rosey.router.lane import Answered
from rosey.router.service import RouterService
from rosey.store import chanstats

pytestmark = pytest.mark.integration  # the `rosey stats` CLI in a subprocess

TZ = ZoneInfo("Europe/Berlin")
CONN = b"conn:chan"
ROOT = Path(__file__).resolve().parents[2]


async def rosey_stats(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`rosey stats --days 1 ...` as an operator runs it (in a thread: the loop stays free)."""
    command = [sys.executable, "-m", "rosey.cli.main", "--config", str(path), "stats",
               "--days", "1", *args]
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                   timeout=30, cwd=ROOT)


def at(hour: int, minute: int = 0) -> float:
    return datetime(2027, 1, 15, hour, minute, tzinfo=TZ).timestamp()


def chat(name: str, text: str, when: float) -> Chat:
    return Chat(channel="chan", username=name, text=text, time=int(when * 1000),
                received_at=when)


async def scripted_day(tmp: Path) -> tuple[Path, RouterService]:
    config = {"channel": "chan", "user": ["roseybot", "pw"], "paths": {"data_dir": str(tmp)},
              "router": {"limits": {"timezone": "Europe/Berlin"}}}
    path = tmp / "config.json"
    path.write_text(json.dumps(config))
    clock = [at(8)]
    svc = RouterService(load_config(path, env={}), clock=lambda: clock[0])
    svc.store.open()
    svc.router.restore()

    async def send(when: float, *msgs: object) -> None:
        clock[0] = when
        for msg in msgs:
            await svc.on_conn_message(CONN, msg)  # type: ignore[arg-type]

    users = [User(name=n, rank=r) for n, r in (("roseybot", 2), ("alice", 1), ("bob", 1))]
    await send(at(9), UserList(channel="chan", users=users))
    for minute in (1, 2, 3):
        await send(at(9, minute), chat("alice", f"morning {minute}", at(9, minute)))
    await send(at(9, 10), chat("bob", "hi all", at(9, 10)))
    items = [PlaylistEntry(uid=0, title="Clip A", id="a", type="yt", queueby="alice"),
             PlaylistEntry(uid=1, title="Clip B", id="b", type="yt", queueby="bob")]
    await send(at(10), Playlist(channel="chan", items=items),
               PlaylistCurrent(channel="chan", uid=0),
               MediaChanged(channel="chan", title="Clip A", id="a", type="yt", seconds=60))
    await send(at(11), PlaylistCurrent(channel="chan", uid=1),
               MediaChanged(channel="chan", title="Clip B", id="b", type="yt", seconds=60))
    await send(at(12), UserJoined(channel="chan", user=User(name="carol", rank=1)))
    await send(at(12, 30), UserJoined(channel="chan", user=User(name="dave", rank=0)))
    for minute in range(31, 36):
        await send(at(12, minute), chat("carol", "so much to say", at(12, minute)))
    for minute in (36, 37):
        await send(at(12, minute), chat("dave", "me too", at(12, minute)))
    await send(at(13), UserLeft(channel="chan", name="dave"),
               UserLeft(channel="chan", name="carol"))
    await send(at(20, 15), chat("alice", "evening", at(20, 15)), chat("alice", "bye", at(20, 16)))
    for hour in range(9, 22, 4):  # the stats loop's samples
        clock[0] = at(hour)
        svc.router.only.statskeeper.sample(svc.router.only.channel, clock[0])
    clock[0] = at(20, 30)
    svc.router.only.answered(Answered("chan", "alice", "hello", Result(
        id="r1", caller="c", ok=True, prompt_tokens=100, completion_tokens=20,
        cost_usd=0.002)))
    svc.router.only.answered(Answered("chan", "bob", "", Result(id="r2", caller="c", ok=False)))
    await svc.store.flush()
    return path, svc


async def test_a_scripted_day_gives_exact_numbers(tmp_path: Path) -> None:
    path, svc = await scripted_day(tmp_path)
    try:
        assert metrics.CHANNEL_USERS.labels("chan")._value.get() == 3  # after carol and dave left
        assert metrics.CHANNEL_PEAK.labels("chan")._value.get() == 5
        summary = chanstats.summary(svc.store.query_sync, "chan", "today", at(23), TZ)
        assert chanstats.describe(summary, TZ) == (
            "today (since 2027-01-15): 13 messages from 4 people; peak 5 users at 12:30; "
            "LLM 2 requests (1 fallbacks), 120 tokens, $0.0020")
        samples = svc.store.query_sync("SELECT users FROM user_counts ORDER BY time")
        assert [n for (n,) in samples] == [3, 3, 3, 3]
        media = svc.store.query_sync("SELECT title, queued_by FROM media ORDER BY started_at")
        assert media == [("Clip A", "alice"), ("Clip B", "bob")]
        seen = svc.store.query_sync("SELECT name, messages FROM users ORDER BY name")
        assert seen == [("alice", 5), ("bob", 1), ("carol", 5), ("dave", 2), ("roseybot", 0)]
        # a restarted router keeps today's peak
        again = RouterService(svc.cfg, clock=lambda: at(21))
        again.store.open()
        again.router.restore()
        assert again.router.only.statskeeper.peak == 5
        again.store.close()
    finally:
        svc.store.close()
    done = await rosey_stats(path, "--until", "2027-01-15", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["top_chatters"] == [["alice", 5], ["carol", 5], ["dave", 2], ["bob", 1]]
    assert report["peaks"] == [["2027-01-15", 5, "12:30"]]
    assert report["busiest_hours"] == [[12, 7], [9, 4], [20, 2]]
    assert report["media"] == [["2027-01-15 11:00", "Clip B", "bob"],
                               ["2027-01-15 10:00", "Clip A", "alice"]]
    assert report["summary"]["messages"] == 13 and report["summary"]["requests"] == 2
    text = (await rosey_stats(path, "--until", "2027-01-15")).stdout
    assert "       5  alice\n       5  carol" in text
    assert "2027-01-15     5 at 12:30" in text and "12:00       7 messages" in text
    # the day before has nothing: the period is respected
    empty = await rosey_stats(path, "--until", "2027-01-14", "--json")
    assert json.loads(empty.stdout)["top_chatters"] == []


async def test_stats_of_several_channels_each_or_one(tmp_path: Path) -> None:
    path, svc = await scripted_day(tmp_path)
    svc.store.close()
    config = json.loads(path.read_text())
    del config["channel"]
    config["channels"] = [{"channel": "chan"}, {"channel": "quiet"}]
    path.write_text(json.dumps(config))
    every = await rosey_stats(path, "--until", "2027-01-15", "--json")
    assert every.returncode == 0, every.stderr
    reports = json.loads(every.stdout)["channels"]
    assert [r["channel"] for r in reports] == ["chan", "quiet"]
    assert reports[0]["summary"]["messages"] == 13 and reports[1]["summary"]["messages"] == 0
    one = await rosey_stats(path, "--until", "2027-01-15", "--json", "--channel", "CHAN")
    assert json.loads(one.stdout)["summary"]["messages"] == 13  # names without case
    text = (await rosey_stats(path, "--until", "2027-01-15")).stdout
    assert "channel chan, last 1 day(s)" in text and "channel quiet, last 1 day(s)" in text
    wrong = await rosey_stats(path, "--channel", "nope")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == ("rosey: --channel nope: not in the config; its channels: "
                                    "chan, quiet")
