"""A moderator runs commands by PM against the fake CyTube, with the real processes under
real supervisord; the operator runs one through `rosey ctl` and reads `rosey stats`."""

from __future__ import annotations

import json

import pytest

from fakes.cytube import FakeCytube
from tests.e2e.harness import BOT, Rosey, deployed

CLIP = "http://127.0.0.1:8099/clip-{}.json"


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
    for key in "abc":
        cytube.add_media("cm", CLIP.format(key), f"Test clip {key.upper()}", 30)
    rosey = Rosey(cytube, {"provider": "ollama", "model": "m",
                           "ollama_host": "http://127.0.0.1:9"}, callers={"count": 1})
    async with deployed(rosey, cytube):
        # deployed() returns once the bot is in the channel; the channel rank the server
        # loads after the login may still be on its way, and a PM sent before it would
        # overtake it (the bot would list itself at its account rank)
        await cytube.wait_for(lambda: cytube._member(BOT).rank == 2, timeout=10)
        users = await ask(cytube, rosey, "Mod", "!users")
        # the fake counts only real sockets (the bot's) in usercount
        assert users == ("4 users (1 connected, guests included): Mod (2), roseybot (2), "
                         "alice (1), bob (1)"), users
        assert await ask(cytube, rosey, "alice", f"!add {CLIP.format('a')}") == \
            "add needs rank 2 (yours is 1)"
        for n, key in enumerate("abc", 1):
            assert await ask(cytube, rosey, "Mod", f"!add {CLIP.format(key)}") == \
                f"added 'Test clip {key.upper()}' at position {n} of {n}"
        assert cytube.playlist_titles == ["Test clip A", "Test clip B", "Test clip C"]
        assert await ask(cytube, rosey, "alice", "!np") == \
            "now playing: Test clip A (1/3, queued by roseybot); next: Test clip B"
        assert await ask(cytube, rosey, "Mod", "!move 3 1") == "moved 'Test clip C' to position 1"
        assert await ask(cytube, rosey, "Mod", "!jump 3") == "now playing 'Test clip B'"
        assert await ask(cytube, rosey, "Mod", "!next") == "skipped; now playing 'Test clip C'"
        assert await ask(cytube, rosey, "Mod", "!remove clip a") == "removed 'Test clip A'"
        assert cytube.playlist_titles == ["Test clip C", "Test clip B"]
        assert (await ask(cytube, rosey, "Mod", "!voteskip")).startswith("voted to skip")
        assert await ask(cytube, rosey, "Mod", "!say hello channel") == "said in the channel"
        assert await ask(cytube, rosey, "Mod", "!pm alice psst") == "PM sent to alice"
        assert (await ask(cytube, rosey, "Mod", "!seen alice")).startswith("alice: here now")
        assert (await ask(cytube, rosey, "Mod", "!stats week")).startswith("week (since ")
        assert "add, remove, move, jump, next, voteskip, kick" in \
            await ask(cytube, rosey, "Mod", "!help")
        assert await ask(cytube, rosey, "Mod", "!mute bob") == "muted bob"
        assert await ask(cytube, rosey, "Mod", "!unmute bob") == "unmuted bob"
        assert await ask(cytube, rosey, "Mod", "!kick bob too loud") == "kicked bob"
        assert "bob" not in cytube.usernames and "alice" in cytube.usernames
        sent = [(e, d) for who, e, d in cytube.frames_from_clients if who == BOT and
                e in ("queue", "moveMedia", "jumpTo", "playNext", "delete", "voteskip",
                      "chatMsg")]
        assert [e for e, _ in sent] == ["queue"] * 3 + ["moveMedia", "jumpTo", "playNext",
                                                        "delete", "voteskip"] + ["chatMsg"] * 4
        assert [d["msg"] for _, d in sent[-4:]] == ["hello channel", "/mute bob", "/unmute bob",
                                                    "/kick bob too loud"]
        # the operator's command line: same table, waits for the server's answer
        done = rosey.cli("ctl", "np")
        assert done.returncode == 0 and done.stdout.strip() == \
            "now playing: Test clip C (1/2, queued by roseybot); next: Test clip B", done
        refused = rosey.cli("ctl", "remove", "7")
        assert refused.returncode == 1 and "there is no position 7" in refused.stdout
        stats = rosey.cli("stats", "--days", "1", "--json")
        assert stats.returncode == 0, stats.stderr
        report = json.loads(stats.stdout)
        assert report["peaks"][0][1] == 4  # Mod, alice, bob and the bot, before the kick
        assert report["media"][0][1:] == ["Test clip C", "roseybot"]
