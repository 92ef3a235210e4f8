"""A moderator runs commands by PM against the fake CyTube, with the real processes under
real supervisord; the operator runs one through `rosey ctl` and reads `rosey stats`."""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import BOT, Rosey, run_rosey
from tests.fakes.cytube import FakeCytube

CLIP = "http://127.0.0.1:8099/clip-a.json"


def answers(cytube: FakeCytube, to: str) -> list[str]:
    return [d["msg"] for who, e, d in cytube.frames_from_clients
            if who == BOT and e == "pm" and d["to"] == to]


async def ask(cytube: FakeCytube, rosey: Rosey, who: str, line: str) -> str:
    before = len(answers(cytube, who))
    await cytube.pm_as(who, BOT, line)
    try:
        await cytube.wait_for(lambda: len(answers(cytube, who)) > before, timeout=15)
    except TimeoutError as exc:
        raise AssertionError(f"no answer to {line!r}; logs:\n{rosey.logs()[-5000:]}") from exc
    return answers(cytube, who)[before]


@pytest.mark.timeout(90)
async def test_moderator_commands_by_pm_under_supervisord(cytube: FakeCytube) -> None:
    cytube.add_virtual_user("Mod", rank=2)
    cytube.add_media("cm", CLIP, "Test clip A", 30)
    rosey = Rosey(cytube, {"provider": "ollama", "model": "m",
                           "ollama_host": "http://127.0.0.1:9"}, callers={"count": 1})
    try:
        await run_rosey(rosey, cytube)
        users = await ask(cytube, rosey, "Mod", "!users")
        # the fake counts only real sockets (the bot's) in usercount
        assert users == ("4 users (1 connected, guests included): Mod (2), roseybot (2), "
                         "alice (1), bob (1)"), users
        assert await ask(cytube, rosey, "alice", f"!add {CLIP}") == \
            "add needs rank 2 (yours is 1)"
        assert await ask(cytube, rosey, "Mod", f"!add {CLIP}") == \
            "added 'Test clip A' at position 1 of 1"
        assert cytube.playlist_titles == ["Test clip A"]
        assert await ask(cytube, rosey, "Mod", "!kick bob too loud") == "kicked bob"
        assert "bob" not in cytube.usernames and "alice" in cytube.usernames
        kicks = [d for who, e, d in cytube.frames_from_clients if who == BOT and e == "chatMsg"]
        assert kicks == [{"msg": "/kick bob too loud", "meta": {}}]
        # the operator's command line: same table, waits for the server's answer
        done = rosey.cli("ctl", "np")
        assert done.returncode == 0 and done.stdout.strip() == \
            "now playing: Test clip A (1/1, queued by roseybot)", done
        refused = rosey.cli("ctl", "remove", "7")
        assert refused.returncode == 1 and "there is no position 7" in refused.stdout
        stats = rosey.cli("stats", "--days", "1", "--json")
        assert stats.returncode == 0, stats.stderr
        report = json.loads(stats.stdout)
        assert report["peaks"][0][1] == 4  # Mod, alice, bob and the bot, before the kick
        assert report["media"][0][1:] == ["Test clip A", "roseybot"]
    finally:
        code = await rosey.stop()
        rosey.cleanup()
    assert code == 0, "rosey run did not stop cleanly"
