"""conn's inbound session (pure): recorded frames in, router messages / emits / signals out."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rosey.conn import events as ev
from rosey.conn.session import Session
from rosey.protocol import (
    Chat,
    ConnState,
    Delivered,
    MediaChanged,
    Pm,
    RankChanged,
    Say,
    UserCount,
    UserJoined,
    UserLeft,
    UserList,
    UserMeta,
)
from tests.transcript import frames


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def session(**kw: Any) -> Session:
    args: dict[str, Any] = {"channel": "testchan", "name": "roseybot",
                            "password": "roseybot-test-pw", "clock": Clock()}
    args.update(kw)
    return Session(**args)


def replay_client(s: Session, client: str, scenarios: set[str] | None = None) -> list[Any]:
    """Feed one recorded client's server frames to a session, as conn does."""
    out: list[Any] = []
    for f in frames(client=client):
        if scenarios is not None and f["scenario"] not in scenarios:
            continue
        if f["dir"] == "in" and f["event"] == "connect":
            s.start_socket()
        elif f["dir"] == "in" and f["event"] not in ("disconnect", "connect_error"):
            s.on_frame(f["event"], f["data"])
            out.extend(s.take()[0])
    return out


def test_server_restart_and_rejoin_forward_no_replayed_history() -> None:
    s = session()
    out = replay_client(s, "roseybot#autoreconnect")
    chats = [m for m in out if isinstance(m, Chat)]
    assert chats == []  # everything the restarts replayed, and our own lines, stay here
    replayed = sum(1 for f in frames(client="roseybot#autoreconnect", direction="in")
                   if f["event"] == "chatMsg")
    assert replayed >= 30
    joined = [m for m in out if isinstance(m, ConnState) and m.state == "joined"]
    assert len(joined) == 2  # once per socket
    # after the duplicate login of its old socket, the bot never says "I left"
    assert not any(isinstance(m, UserLeft) and m.name == "roseybot" for m in out)
    titles = {m.title for m in out if isinstance(m, MediaChanged)}
    assert titles == {"Test clip C <i>html</i> & co"}
    assert s.rank == 2 and s.joined


def test_live_chat_pm_and_channel_state_reach_the_router() -> None:
    s = session(name="roseybot")
    out = replay_client(s, "roseybot", {"bot-join-then-login", "alice-login-then-join",
                                        "chat-basic", "pm", "afk", "rank-change-live",
                                        "clear-chat", "mute"})
    texts = [(m.username, m.text) for m in out if isinstance(m, Chat)]
    assert ("alice", "hi bot, alice here") in texts
    assert ("guest_viewer", "guest says hi") in texts
    assert all(user != "roseybot" and user != "[server]" for user, _ in texts)
    assert [(m.username, m.text) for m in out if isinstance(m, Pm)] == [
        ("alice", "private reply to bot"), ("guest_viewer", ">guest pm reply")]
    kinds = {type(m) for m in out}
    assert {UserList, UserJoined, RankChanged, UserMeta} <= kinds
    assert any(isinstance(m, UserMeta) and m.name == "roseybot" and m.afk for m in out)


def test_usercount_forwarded_the_leader_and_profiles_not() -> None:
    s = session(name="roseybot")
    out = replay_client(s, "roseybot#3")
    assert any(f["event"] == "setLeader" for f in frames(client="roseybot#3"))
    assert not any(type(m).__name__ == "LeaderChanged" for m in out)  # nothing reads it
    assert any(f["event"] == "setUserProfile" for f in frames(client="roseybot#3"))
    assert not any(type(m).__name__ == "Profile" for m in out)  # nothing reads profiles
    assert any(isinstance(m, UserCount) and m.count > 0 for m in out)


def noted(s: Session, kind: str, label: str = "") -> float:
    """How much the session noted of ``kind`` (client.py turns notes into metrics)."""
    return sum(amount for k, lab, amount in s.notes if k == kind and lab == label)


def joined_session(**kw: Any) -> Session:
    s = session(**kw)
    s.start_socket()
    s.on_frame("rank", 2)
    s.on_frame("login", {"success": True, "name": "roseybot"})
    s.on_frame("userlist", [{"name": "roseybot", "rank": 2, "meta": {"afk": False}}])
    s.take()
    return s


def test_echo_confirms_delivery_and_cooldown_resends() -> None:
    s = joined_session()
    s.governor.add(Say(id="r1", channel="testchan", text="alice: hi"), 0.0)
    assert s.governor.next_part(0.0) is not None
    s.on_frame("cooldown", 100)
    assert s.notes == [("server_dropped", "cooldown", 1.0), ("resent", "", 1.0)]
    assert s.governor.next_part(s.clock() + 0.2) is not None
    s.on_frame("chatMsg", {"username": "roseybot", "msg": "alice: hi", "meta": {},
                           "time": 5})
    out, _, _ = s.take()
    assert out == [Delivered(channel="testchan", say_id="r1", ok=True, parts=1)]


def test_noflood_mutes_and_unmute_resumes() -> None:
    s = joined_session()
    s.governor.add(Say(id="r1", channel="testchan", text="hello"), 0.0)
    s.governor.next_part(0.0)
    s.on_frame("noflood", {"action": "chat", "msg": "You have been muted on this channel."})
    out, _, signals = s.take()
    assert out == [Delivered(channel="testchan", say_id="r1", ok=False, parts=1,
                             reason="muted")]
    assert signals == ["muted"] and s.governor.muted  # client.py sets rosey_conn_muted
    s.on_frame("setUserMeta", {"name": "roseybot", "meta": {"afk": False, "muted": False}})
    assert not s.governor.muted
    assert s.take()[2] == ["unmuted"]


def test_spam_filter_and_pm_errors_fail_the_right_say() -> None:
    s = joined_session()
    s.governor.add(Say(id="c", channel="testchan", text="link https://x.example"), 0.0)
    s.governor.add(Say(id="p", channel="testchan", text="hi", pm_to="nobody_here"), 0.0)
    s.governor.next_part(0.0)
    s.governor.next_part(0.0)
    s.on_frame("errorMsg", {"msg": "PM failed: nobody_here isn't connected to this channel."})
    s.on_frame("spamFiltered", {"reason": "NEW_USER_CHAT_LINK"})
    out, _, _ = s.take()
    assert [(m.say_id, m.reason) for m in out if isinstance(m, Delivered)] == [
        ("p", "pm failed"), ("c", "spam filtered")]
    assert ("spam_filtered", "NEW_USER_CHAT_LINK", 1.0) in s.notes


def test_fatal_answers_stop_retrying_with_one_reason() -> None:
    cases = [
        ("login", {"success": False, "error": "Invalid username/password combination"}, {}),
        ("login", {"success": False, "error": "That username is reserved."},
         {"name": "x-admin", "password": ""}),
        ("kick", {"reason": "You're banned!"}, {}),
        ("kick", {"reason": "Invalid channel name"}, {}),
        ("needPassword", True, {"channel_password": "wrong"}),
        ("needPassword", False, {}),
    ]
    reasons = []
    for event, data, kw in cases:
        s = session(**kw)
        s.start_socket()
        s.on_frame(event, data)
        s.on_frame(event, data)  # a second fatal answer does not signal twice
        _, _, signals = s.take()
        assert signals.count("fatal") == 1, (event, data)
        assert s.fatal
        reasons.append(s.fatal_reason)
    assert reasons == ["bad_password", "bad_name", "channel_ban", "no_channel",
                       "channel_password", "channel_password"]
    ok = session()
    ok.start_socket()
    ok.on_frame("kick", {"reason": "Duplicate login"})
    assert ok.take()[2] == ["kicked"] and not ok.fatal and ok.kick_verdict == "duplicate"


def test_login_retries_and_channel_password() -> None:
    s = session(password="", name="rosey_guest")
    emits = s.start_socket()
    assert [(e.event, e.data) for e in emits] == [
        ("joinChannel", {"name": "testchan"}), ("login", {"name": "rosey_guest"})]
    s.take()
    s.on_frame("login", {"success": False, "error": "Guest logins are restricted to one per "
                                                    "IP address per 60 seconds."})
    _, emits, signals = s.take()
    assert [(e.event, e.delay) for e in emits] == [("login", 61.0)]
    assert signals == ["guest_login"] and not s.fatal
    p = session(channel_password="letmein")
    assert p.start_socket()[0].data == {"name": "testchan", "pw": "letmein"}
    p.on_frame("needPassword", False)
    assert [(e.event, e.data) for e in p.take()[1]] == [("channelPassword", "letmein")]


def test_keepalive_clears_auto_afk_only_when_switched_on() -> None:
    for enabled in (False, True):
        s = joined_session(keepalive_afk=enabled)
        s.on_frame("setUserMeta", {"name": "roseybot", "meta": {"afk": True, "muted": False}})
        s.on_frame("setAFK", {"name": "roseybot", "afk": True})
        queued = [p.text for q in s.governor.queues.values() for p in q]
        assert queued == (["/afk"] if enabled else [])
        s.on_frame("setAFK", {"name": "roseybot", "afk": False})
        assert s.governor.depth() == 0


def test_unknown_events_are_counted() -> None:
    s = joined_session()
    s.on_frame("brandNewEvent", {"x": 1})
    s.on_frame("emoteList", [])  # known, ignored: not counted as unknown
    assert s.notes == [("unknown_event", "", 1.0)]
    assert s.take() == ([], [], [])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "msg", "username", "time", "rank", "meta", "afk", "muted",
                         "success", "error", "reason", "uid", "media", "item", "after",
                         "title", "id", "type", "seconds", "count", "to", "profile"]),
        inner, max_size=6),
    max_leaves=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.sampled_from(sorted(ev.KNOWN_EVENTS)), data=JSON)
def test_fuzzed_frames_count_once_as_malformed_or_parse(event: str, data: Any) -> None:
    s = joined_session()
    try:
        ev.parse_frame(event, data)
        malformed = False
    except ev.FrameError:
        malformed = True
    s.on_frame(event, data)
    assert s.notes.count(("frame_error", event, 1.0)) == malformed
    if malformed:  # dropped: nothing reaches the router, the server or the lifecycle
        assert s.take() == ([], [], [])
        assert s.joined and s.governor.depth() == 0


def test_malformed_real_frames_are_dropped_with_one_count() -> None:
    s = joined_session()
    s.on_frame("chatMsg", {"username": "alice", "msg": 12345, "time": 1})
    s.on_frame("chatMsg", {"username": "alice", "msg": "fine", "time": 10**13})
    assert noted(s, "frame_error", "chatMsg") == 1
    out, _, _ = s.take()
    assert [m.text for m in out if isinstance(m, Chat)] == ["fine"]


def log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rosey.conn"]


def test_the_join_line_names_the_channel_rank_once_it_arrives(
        caplog: pytest.LogCaptureFixture) -> None:
    """Recorded order (chat-markdown-setup): rank -1, userlist, rank 1, login, addUser,
    rank 2, userlist, setUserRank. Joined at the login, when the rank is still the
    account's global 1: the line must not say "rank 1" for a moderator."""
    caplog.set_level(logging.INFO, "rosey.conn")
    s = session()
    replay_client(s, "roseybot", {"chat-markdown-setup"})
    assert s.joined and s.rank == 2
    lines = log_lines(caplog)
    assert lines == ["joined testchan as roseybot; its channel rank follows",
                     "rank of roseybot in testchan: 2 (moderator)"]
    s.on_frame("rank", 2)  # the same rank again: nothing new to say
    s.on_frame("rank", 1.5)  # demoted live: said again
    assert log_lines(caplog)[2:] == ["rank of roseybot in testchan: 1.5 (leader)"]
    s.start_socket()  # a new socket: the rank is said again once known
    s.on_frame("rank", 1)
    s.on_frame("login", {"success": True, "name": "roseybot"})
    s.on_frame("userlist", [])
    s.on_frame("rank", 1.5)
    assert log_lines(caplog)[3:] == ["joined testchan as roseybot; its channel rank follows",
                                     "rank of roseybot in testchan: 1.5 (leader)"]


def test_a_guest_joins_with_its_final_rank_and_a_registered_name_is_fatal(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rosey.conn")
    recorded = [f for f in frames(scenario="guest-login-errors", client="guest2")
                if f["dir"] == "in" and f["event"] == "login"]
    refused = session(name="alice", password="")
    refused.start_socket()
    refused.on_frame("login", recorded[0]["data"])
    assert recorded[0]["data"]["error"] == "That username is registered."
    assert refused.fatal_reason == "registered_name"
    assert refused.take()[2] == ["guest_login", "fatal"]
    guest = session(name="guest_two", password="")
    guest.start_socket()
    guest.on_frame("userlist", [])
    guest.on_frame("rank", 0)
    guest.on_frame("login", recorded[-1]["data"])
    assert recorded[-1]["data"] == {"success": True, "name": "guest_two", "guest": True}
    assert guest.joined and log_lines(caplog) == [
        "joined testchan as guest_two (guest)", "rank of guest_two in testchan: 0 (guest)"]
