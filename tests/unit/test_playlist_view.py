"""The router's playlist view, fed the recorded frames through conn's real parsing path.

Every frame the bot's socket received (client ``roseybot#2``) goes through a conn Session; the
messages it sends up are applied to the router's ChannelState. The view built from the
incremental events must equal the full ``playlist`` the server sent afterwards
(scenario ``playlist-request``), and stay right through moves, deletes, jumps and temp items.
"""

from __future__ import annotations

import pytest

from rosey.conn.actions import ActionTracker
from rosey.conn.session import Session
from rosey.protocol import (
    ActionResult,
    Kick,
    Mute,
    Playlist,
    PlaylistAdd,
    PlaylistDelete,
    PlaylistEntry,
    PlaylistJump,
    PlaylistMove,
    VoteSkip,
)
from rosey.router.channel import ChannelState
from rosey.router.playlist import PlaylistView
from tests.transcript import frames


def _session() -> Session:
    return Session(channel="testchan", name="roseybot", password="pw", clock=lambda: 100.0)


def test_incremental_events_match_the_servers_full_resend() -> None:
    session, state = _session(), ChannelState(bot_name="roseybot")
    checked = 0
    for f in frames(client="roseybot#2", direction="in"):
        session.on_frame(f["event"], f["data"])
        for msg in session.take()[0]:
            if isinstance(msg, Playlist) and msg.items and f["scenario"] == "playlist-request":
                assert [(i.uid, i.title, i.temp) for i in state.playlist.items] == \
                    [(i.uid, i.title, i.temp) for i in msg.items]
                assert state.playlist.items == msg.items  # every field
                checked += 1
            state.apply(msg)
        if f["scenario"] == "playlist-end-of-item" and f["event"] == "changeMedia":
            pl = state.playlist
            assert [(i.uid, i.title) for i in pl.items] == [(1, "Test clip B"),
                                                            (3, "Livestream")]
            assert pl.now_playing() is not None and pl.now_playing().uid == 3  # type: ignore[union-attr]
            assert pl.up_next() is not None and pl.up_next().uid == 1  # type: ignore[union-attr]
            checked += 1
    assert checked == 2
    assert state.playlist.items == []  # playlist-clear ends the recording's playlist
    assert state.permissions["playlistdelete"] == 2 and state.locked is True


def entry(uid: int, title: str) -> PlaylistEntry:
    return PlaylistEntry(uid=uid, title=title, id=f"id{uid}", type="cm")


@pytest.mark.parametrize(("events", "order"), [
    ([("q", 0, "prepend"), ("q", 1, 0), ("q", 2, 0)], [0, 2, 1]),  # "next" goes after current
    ([("q", 0, "prepend"), ("q", 1, 0), ("m", 1, "prepend")], [1, 0]),
    ([("q", 0, "prepend"), ("q", 1, 0), ("q", 2, 1), ("m", 0, "append")], [1, 2, 0]),
    ([("q", 0, "prepend"), ("q", 1, 0), ("q", 2, 1), ("m", 0, 2), ("d", 1, None)], [2, 0]),
    ([("q", 0, "prepend"), ("q", 0, "prepend")], [0]),  # a uid is never kept twice
    ([("q", 0, "prepend"), ("q", 1, 99)], [0, 1]),  # unknown "after": the end
])
def test_view_applies_events_like_cytubes_client(events: list[tuple[str, int, object]],
                                                 order: list[int]) -> None:
    view = PlaylistView()
    for kind, uid, after in events:
        if kind == "q":
            view.queued(entry(uid, f"t{uid}"), after)  # type: ignore[arg-type]
        elif kind == "m":
            view.moved(uid, after)  # type: ignore[arg-type]
        else:
            view.deleted(uid)
    assert [i.uid for i in view.items] == order
    assert [view.position(uid) for uid in order] == list(range(1, len(order) + 1))


def test_find_and_positions() -> None:
    view = PlaylistView()
    for uid, title in enumerate(["Cats in Space", "Dogs in space", "Cats at home"]):
        view.queued(entry(uid, title), uid - 1 if uid else "prepend")
    assert [i.uid for i in view.find("CATS")] == [0, 2]
    assert [i.uid for i in view.find("in space")] == [0, 1]
    assert view.find("") == [] and view.at(4) is None and view.at(1) is not None
    view.set_current(2)
    assert view.up_next() is not None and view.up_next().uid == 0  # type: ignore[union-attr]


# ---- conn: each action becomes exactly one frame, settled by what the server says ----------

def _start(tracker: ActionTracker, action: object) -> tuple[str, object]:
    event, data, failure = tracker.start(action, 0.0, True)  # type: ignore[arg-type]
    assert failure is None
    return event, data


def test_actions_map_to_the_recorded_client_frames() -> None:
    t = ActionTracker("c")
    assert _start(t, PlaylistAdd(id="1", channel="c", media_id="u", media_type="cm",
                                 pos="next", temp=True)) == \
        ("queue", {"id": "u", "type": "cm", "pos": "next", "temp": True})
    assert _start(t, PlaylistDelete(id="2", channel="c", uid=4)) == ("delete", 4)
    assert _start(t, PlaylistMove(id="3", channel="c", uid=4, after="prepend")) == \
        ("moveMedia", {"from": 4, "after": "prepend"})
    assert _start(t, PlaylistJump(id="4", channel="c", uid=2)) == ("jumpTo", 2)
    assert _start(t, VoteSkip(id="5", channel="c")) == ("voteskip", None)
    assert _start(t, Kick(id="6", channel="c", name="alice", reason="spam\n/clear\x07 now")) \
        == ("chatMsg", "/kick alice spam /clear  now")  # control runs: one space each
    assert _start(t, Mute(id="m1", channel="c", name="bob")) == ("chatMsg", "/mute bob")
    assert _start(t, Mute(id="m2", channel="c", name="bob", muted=False)) == \
        ("chatMsg", "/unmute bob")
    event, _, failure = t.start(Kick(id="7", channel="c", name="bad name!", reason=""), 0.0,
                                True)
    assert event == "" and failure is not None and not failure.ok
    _, _, offline = ActionTracker("c").start(VoteSkip(id="8", channel="c"), 0.0, False)
    assert offline == ActionResult(channel="c", action_id="8", ok=False,
                                   detail="not connected to the channel", answered=False)


def test_session_reports_the_servers_verdicts() -> None:
    s = _session()
    s.on_frame("userlist", [])
    s.on_frame("login", {"success": True, "name": "roseybot"})
    s.take()
    s.act(PlaylistAdd(id="a1", channel="testchan", media_id="http://x/a.json", media_type="cm"))
    s.act(PlaylistAdd(id="a2", channel="testchan", media_id="http://x/b.json", media_type="cm"))
    s.act(Kick(id="k1", channel="testchan", name="testowner"))
    s.act(PlaylistDelete(id="d1", channel="testchan", uid=9))
    _, emits, _ = s.take()
    assert [(e.event, e.data) for e in emits][:1] == [
        ("queue", {"id": "http://x/a.json", "type": "cm", "pos": "end", "temp": True})]
    assert s.governor.next_part(100.0).text == "/kick testowner"  # type: ignore[union-attr]
    s.on_frame("queueFail", {"msg": "Unknown media type &#39;zz&#39;", "link": "",
                             "id": "http://x/b.json"})
    s.on_frame("errorMsg", {"msg": "You do not have permission to kick testowner"})
    s.on_frame("queue", {"item": {"media": {"id": "http://x/a.json", "title": "A",
                                            "seconds": 1, "type": "cm"}, "uid": 0,
                                  "temp": True, "queueby": "roseybot"}, "after": "prepend"})
    results = {m.action_id: m for m in s.take()[0] if isinstance(m, ActionResult)}
    assert results["a1"].ok and results["a1"].detail == "A"
    assert not results["a2"].ok and results["a2"].detail == "Unknown media type 'zz'"
    assert not results["k1"].ok and "permission to kick testowner" in results["k1"].detail
    assert "d1" not in results  # nothing from the server about uid 9 yet
    expired = s.actions.expire(111.0)
    assert [(m.action_id, m.answered) for m in expired] == [("d1", False)]
    assert results["a2"].answered and results["k1"].answered
    assert s.actions.pending == {}


def test_a_restarted_router_is_told_the_playlist_again() -> None:
    """conn re-announces the playlist (full list + changes since), the permissions and what
    plays, so a new router's view equals the old one's at every point of the recording."""
    session, old = _session(), ChannelState(bot_name="roseybot")
    compared = 0
    for f in frames(client="roseybot#2", direction="in"):
        session.on_frame(f["event"], f["data"])
        for msg in session.take()[0]:
            old.apply(msg)
        if not session.joined or f["event"] not in ("queue", "delete", "moveVideo",
                                                    "setTemp", "changeMedia"):
            continue
        new = ChannelState(bot_name="roseybot")
        session.announce()
        for msg in session.take()[0]:
            new.apply(msg)
        assert new.playlist.items == old.playlist.items
        assert new.playlist.now_playing() == old.playlist.now_playing()
        assert (new.permissions, new.locked) == (old.permissions, old.locked)
        compared += 1
    assert compared >= 10
