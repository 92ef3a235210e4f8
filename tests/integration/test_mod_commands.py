"""Moderator commands through the real router and conn against the fake CyTube.

For each command: an authorised moderator gets the right frame to the server and a
confirmation; a user below the command's rank is refused and nothing is sent; a bot whose own
rank is too low says so without sending; a server refusal comes back with the server's reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fakes.cytube import FakeCytube
from tests.integration.mod_stack import BOT, CLIP, PLAYLIST_FRAMES, PW, ModStack

pytestmark = pytest.mark.timeout(120)


def catalog(fake: FakeCytube) -> None:
    for key, title, seconds in (("a", "Test clip A", 30), ("b", "Test clip B", 12),
                                ("c", "Test clip C <i>html</i> & co", 600)):
        fake.add_media("cm", CLIP.format(key), title, seconds)


@pytest.fixture
async def fake() -> AsyncIterator[FakeCytube]:
    server = FakeCytube("testchan")
    server.add_account(BOT, PW, rank=2)
    catalog(server)
    for name, rank in (("Mod", 2), ("alice", 1), ("bob", 1), ("Owner", 4)):
        server.add_virtual_user(name, rank)
    async with server:
        yield server


async def test_playlist_commands_end_to_end(fake: FakeCytube) -> None:
    async with ModStack(fake) as s:
        # unauthorised first: refused, nothing sent
        assert await s.ask("alice", f"!add {CLIP.format('a')}") == \
            "add needs rank 2 (yours is 1)"
        assert s.sent(*PLAYLIST_FRAMES) == []
        # add, add next, and the refusals of the server and of the link parser
        assert await s.ask("Mod", f"!add {CLIP.format('a')}") == \
            "added 'Test clip A' at position 1 of 1"
        assert s.sent("queue") == [("queue", {"id": CLIP.format("a"), "type": "cm",
                                              "pos": "end", "temp": False})]
        assert await s.ask("Mod", f"!add {CLIP.format('b')}") == \
            "added 'Test clip B' at position 2 of 2"
        assert await s.ask("Mod", f"!add {CLIP.format('c')} next") == \
            "added 'Test clip C <i>html</i> & co' at position 2 of 3"
        assert await s.ask("Mod", f"!add {CLIP.format('a')}") == \
            "the server refused: This item is already on the playlist"
        assert await s.ask("Mod", f"!add {CLIP.format('missing')}") == \
            "the server refused: Expected HTTP 200 OK, not 404 Not Found"
        assert (await s.ask("Mod", "!add ftp://nowhere/x")).startswith(
            "can't add ftp://nowhere/x: Could not determine video type")
        assert len(s.sent("queue")) == 5  # the unparseable link never reached the server
        assert fake.playlist_titles == ["Test clip A", "Test clip C <i>html</i> & co",
                                        "Test clip B"]
        assert await s.ask("alice", "!np") == ("now playing: Test clip A (1/3, queued by "
                                               "roseybot); next: Test clip C <i>html</i> & co")
        # move, jump, next, remove (by title words), voteskip
        assert await s.ask("Mod", "!move 3 1") == "moved 'Test clip B' to position 1"
        assert s.sent("moveMedia")[-1] == ("moveMedia", {"from": 1, "after": "prepend"})
        assert fake.playlist_titles[0] == "Test clip B"
        assert await s.ask("Mod", "!move 9 1") == \
            "there is no position 9: the playlist has 3 items"
        assert await s.ask("Mod", "!jump 3") == "now playing 'Test clip C <i>html</i> & co'"
        assert s.sent("jumpTo") == [("jumpTo", 2)]
        assert await s.ask("Mod", "!next") == "skipped; now playing 'Test clip B'"
        assert s.sent("playNext") == [("playNext", None)]
        assert await s.ask("Mod", "!remove clip") == \
            "3 items match: 1. Test clip B; 2. Test clip A; 3. Test clip C <i>html</i> & co; " \
            "give a position"
        assert await s.ask("Mod", "!remove html co") == \
            "removed 'Test clip C <i>html</i> & co'"
        assert s.sent("delete") == [("delete", 2)]
        assert fake.playlist_titles == ["Test clip B", "Test clip A"]
        voted = await s.ask("Mod", "!voteskip")
        assert voted.startswith("voted to skip"), voted
        assert s.sent("voteskip") == [("voteskip", None)]
        # a request the server ignores in silence ends with conn's timeout, said plainly
        s.conn.client().session.actions.timeout = 0.5
        fake.permissions["playlistjump"] = 3  # changed without a setPermissions reaching us
        assert await s.ask("Mod", "!jump 2") == (
            "the server did not answer within 0.5 s (CyTube ignores requests it does not "
            "permit, or the target is gone)")
        assert s.sent("jumpTo")[-1] == ("jumpTo", 0)  # it was sent; nothing came back
        # the router's view matches the channel after all of it
        view = [i.title for i in s.router.router.only.channel.playlist.items]
        assert view == fake.playlist_titles


async def test_bot_rank_too_low_is_answered_without_sending(fake: FakeCytube) -> None:
    fake.add_account(BOT, PW, rank=1.5)  # a leader: may add (1.5) but not delete (2)
    async with ModStack(fake) as s:
        assert await s.ask("Mod", "!add https://media.example.com/v.mp4") == (
            "I can't add fi media: the channel needs rank 2 for playlistaddrawfile and mine "
            "is 1.5")
        assert await s.ask("Mod", f"!add {CLIP.format('a')}") == (
            "I can't add cm media: the channel needs rank 2 for playlistaddrawfile and mine "
            "is 1.5")
        fake.add_media("rt", "rtmp://live.example.com/app/stream", "Livestream", 0)
        assert await s.ask("Mod", "!add rtmp://live.example.com/app/stream") == \
            "added 'Livestream' at position 1 of 1"
        assert await s.ask("Mod", "!remove 1") == (
            "I can't delete from the playlist: the channel needs rank 2 for playlistdelete and "
            "mine is 1.5")
        assert await s.ask("Owner", "!kick Mod") == \
            "I can't kick Mod: CyTube only lets me kick ranks below mine (1.5)"
        assert s.sent("chatMsg") == []
        assert [e for e, _ in s.sent(*PLAYLIST_FRAMES)] == ["queue"]


async def test_kick_say_pm_and_people(fake: FakeCytube) -> None:
    async with ModStack(fake) as s:
        assert await s.ask("alice", "!kick bob") == "kick needs rank 2 (yours is 1)"
        assert await s.ask("Mod", "!kick Owner") == \
            "you can't kick Owner: their rank (4) is not below yours (2)"
        assert await s.ask("Mod", "!kick nobody") == "nobody is not in the channel"
        assert await s.ask("Mod", f"!kick {BOT}") == "I won't kick myself"
        assert s.sent("chatMsg") == []  # nothing reached the server
        assert await s.ask("Mod", "!kick alice spamming links\n/clear") == "kicked alice"
        assert s.sent("chatMsg") == [("chatMsg", {"msg": "/kick alice spamming links /clear",
                                                  "meta": {}})]
        assert "alice" not in fake.usernames
        # the server refuses when its view of a rank is newer than ours
        fake._members["bob"].rank = 2  # promoted without a setUserRank reaching us yet
        assert await s.ask("Mod", "!kick bob") == \
            "the server refused: You do not have permission to kick bob"
        assert "bob" in fake.usernames
        # mute / unmute: /mute and /unmute chat commands, settled by setUserMeta or the notice
        assert await s.ask("bob", "!mute Mod") == "mute needs rank 2 (yours is 1)"
        assert await s.ask("Mod", "!mute Owner") == \
            "you can't mute Owner: their rank (4) is not below yours (2)"
        assert await s.ask("Mod", "!mute bob") == \
            "the server refused: /mute failed - bob has equal or higher rank than you."
        fake._members["bob"].rank = 1
        assert await s.ask("Mod", "!mute bob") == "muted bob"
        assert "bob" in fake.muted and s.router.router.only.channel.users["bob"].muted
        assert await s.ask("Mod", "!unmute bob") == "unmuted bob"
        assert await s.ask("Mod", "!unmute bob") == "the server refused: bob is not muted."
        assert "bob" not in fake.muted
        assert [d["msg"] for _, d in s.sent("chatMsg")][1:] == [
            "/kick bob", "/mute bob", "/mute bob", "/unmute bob", "/unmute bob"]
        # say / pm: through the ordinary governed path; a leading / never runs as a command
        assert await s.ask("Mod", "!say /clear everything") == "said in the channel"
        await fake.wait_for(lambda: any(m["username"] == BOT for m in fake.chat_log))
        assert [m["msg"] for m in fake.chat_log if m["username"] == BOT] == \
            [" /clear everything"]
        assert (BOT, "/clear everything") not in fake.commands_run
        assert await s.ask("Mod", "!pm bob hello there") == "PM sent to bob"
        assert [p["msg"] for p in fake.pm_log if p["to"] == "bob"][-1] == "hello there"
        assert await s.ask("Mod", "!pm ghost hi") == "ghost is not in the channel"
        users = await s.ask("Mod", "!users")
        assert users.startswith("4 users") and "Owner (4)" in users and "bob (2)" not in users
        await fake.set_afk("bob", True)
        await asyncio.sleep(0.2)
        assert "bob (1, AFK)" in await s.ask("Mod", "!users")
        assert (await s.ask("Mod", "!seen bob")).startswith("bob: here now; first seen ")
        assert await s.ask("Mod", "!seen ghost") == "I have not seen ghost"
        stats = await s.ask("Mod", "!stats")
        assert stats.startswith("today (since ") and "peak 5 users at" in stats, stats
        helped = await s.ask("bob", "!help")
        assert helped == "you may use: np, forget, optout, optin, help (help <command> for its " \
            "usage)"
        assert "kick, mute, unmute" in await s.ask("Mod", "!help")
        assert await s.ask("bob", "!help kick") == "kick <user> [reason] (rank 2)"
