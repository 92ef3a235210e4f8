"""rosey.conn.events against the frames recorded from a live CyTube 3.86 server."""

from __future__ import annotations

import functools
import math
import random
import re
import time
from typing import Any

import pytest

from rosey.conn import events as ev
from rosey.conn.events import FrameError, JoinReplayFilter, html_to_text, parse_frame
from tests.transcript import LIFECYCLE_EVENTS, frames

EXPECTED_TYPES: dict[str, type] = {
    "chatMsg": ev.ChatFrame,
    "pm": ev.PmFrame,
    "userlist": ev.UserlistFrame,
    "addUser": ev.AddUserFrame,
    "userLeave": ev.UserLeaveFrame,
    "setUserRank": ev.SetUserRankFrame,
    "setUserMeta": ev.SetUserMetaFrame,
    "setAFK": ev.SetAFKFrame,
    "setUserProfile": ev.SetUserProfileFrame,
    "usercount": ev.UsercountFrame,
    "channelRankFail": ev.ChannelRankFailFrame,
    "rank": ev.RankFrame,
    "login": ev.LoginFrame,
    "kick": ev.KickFrame,
    "errorMsg": ev.ErrorMsgFrame,
    "noflood": ev.NoFloodFrame,
    "spamFiltered": ev.SpamFilteredFrame,
    "cooldown": ev.CooldownFrame,
    "needPassword": ev.NeedPasswordFrame,
    "cancelNeedPassword": ev.CancelNeedPasswordFrame,
    "channelOpts": ev.ChannelOptsFrame,
    "setPermissions": ev.SetPermissionsFrame,
    "playlist": ev.PlaylistFrame,
    "queue": ev.QueueFrame,
    "queueFail": ev.QueueFailFrame,
    "queueWarn": ev.QueueFailFrame,
    "delete": ev.DeleteFrame,
    "moveVideo": ev.MoveVideoFrame,
    "setTemp": ev.SetTempFrame,
    "setCurrent": ev.SetCurrentFrame,
    "changeMedia": ev.ChangeMediaFrame,
    "setPlaylistLocked": ev.SetPlaylistLockedFrame,
    "voteskip": ev.VoteskipFrame,
    **{name: ev.IgnoredFrame for name in ev.IGNORED_EVENTS},
}


def first(event: str, scenario: str | None = None, **match: Any) -> Any:
    """Data of the first recorded server frame of ``event`` whose data contains ``match``."""
    for f in frames(scenario=scenario, direction="in"):
        if f["event"] != event:
            continue
        d = f["data"]
        if all(isinstance(d, dict) and d.get(k) == v for k, v in match.items()):
            return d
    raise LookupError(f"no {event} {match} in {scenario}")


# ---------------------------------------------------------------- every real frame


def test_the_event_table_is_the_expected_one() -> None:
    assert set(EXPECTED_TYPES) == ev.KNOWN_EVENTS
    assert not ev.KNOWN_EVENTS & LIFECYCLE_EVENTS  # python-socketio callbacks, not frames


def test_every_recorded_server_frame_parses_to_the_right_type() -> None:
    incoming = [f for f in frames(direction="in") if f["event"] not in LIFECYCLE_EVENTS]
    assert len(incoming) > 1500
    seen: set[str] = set()
    for f in incoming:
        parsed = parse_frame(f["event"], f["data"])  # real frames never raise
        assert f["event"] in ev.KNOWN_EVENTS, f  # no recorded event is unknown
        assert type(parsed) is EXPECTED_TYPES[f["event"]], f
        seen.add(f["event"])
    # every §3-§8 event the recorder could provoke was recorded; the others are covered by hand
    assert set(EXPECTED_TYPES) - seen == {
        "spamFiltered", "queueWarn", *ev.IGNORED_EVENTS,
    } - {"emoteList", "channelCSSJS", "setMotd", "listPlaylists", "clearchat", "setLeader",
         "channelRanks", "clearVoteskipVote", "channelNotRegistered", "validationPassed",
         "mediaUpdate", "setPlaylistMeta", "drinkCount"}
    for name in LIFECYCLE_EVENTS:
        assert parse_frame(name, None) == ev.UnknownFrame(name)


def _entry(d: dict[str, Any]) -> ev.UserEntry:
    m = d["meta"]
    return ev.UserEntry(d["name"], d["rank"], m["afk"], m["muted"], m.get("smuted", False),
                        tuple(m.get("aliases", ())))


def _item(d: dict[str, Any]) -> ev.PlaylistItem:
    m = d["media"]
    return ev.PlaylistItem(d["uid"], ev.Media(m["title"], m["id"], m["type"], m["seconds"]),
                           d["temp"], d["queueby"])


# The expected typed frame for a recorded payload, written from PROTOCOL.md independently of
# the parser: every recorded "in" frame is checked field by field against it.
GOLDEN: dict[str, Any] = {
    "chatMsg": lambda d: ev.ChatFrame(d["username"], d["msg"], html_to_text(d["msg"]), d["time"],
                                      d["meta"], d["meta"].get("shadow", False),
                                      d["username"] == "[server]"),
    "pm": lambda d: ev.PmFrame(d["username"], d["to"], html_to_text(d["msg"]), d["time"],
                               d["meta"], d["msg"]),
    "userlist": lambda d: ev.UserlistFrame(tuple(_entry(u) for u in d)),
    "addUser": lambda d: ev.AddUserFrame(_entry(d)),
    "userLeave": lambda d: ev.UserLeaveFrame(d["name"]),
    "setUserRank": lambda d: ev.SetUserRankFrame(d["name"], d["rank"], d.get("userrank")),
    "setUserMeta": lambda d: ev.SetUserMetaFrame(d["name"], d["meta"]["afk"],
                                                 d["meta"]["muted"],
                                                 d["meta"].get("smuted", False)),
    "setAFK": lambda d: ev.SetAFKFrame(d["name"], d["afk"]),
    "setUserProfile": lambda d: ev.SetUserProfileFrame(d["name"], d["profile"]["text"],
                                                       d["profile"]["image"]),
    "usercount": lambda d: ev.UsercountFrame(d),
    "channelRankFail": lambda d: ev.ChannelRankFailFrame(d["msg"]),
    "rank": lambda d: ev.RankFrame(d),
    "login": lambda d: ev.LoginFrame(d["success"], d.get("name", ""), d.get("guest", False),
                                     d.get("error", "")),
    "kick": lambda d: ev.KickFrame(d["reason"]),
    "errorMsg": lambda d: ev.ErrorMsgFrame(d["msg"], d.get("code", "")),
    "noflood": lambda d: ev.NoFloodFrame(d["action"], d["msg"]),
    "cooldown": lambda d: ev.CooldownFrame(d),
    "needPassword": lambda d: ev.NeedPasswordFrame(d),
    "cancelNeedPassword": lambda d: ev.CancelNeedPasswordFrame(),
    "channelOpts": lambda d: ev.ChannelOptsFrame(
        d["afk_timeout"], d["chat_antiflood"], d["chat_antiflood_params"]["burst"],
        d["chat_antiflood_params"]["sustained"]),
    "setPermissions": lambda d: ev.SetPermissionsFrame(d),
    "playlist": lambda d: ev.PlaylistFrame(tuple(_item(i) for i in d)),
    "queue": lambda d: ev.QueueFrame(_item(d["item"]), d["after"]),
    "queueFail": lambda d: ev.QueueFailFrame(d["msg"], d["link"], id=d["id"]),
    "delete": lambda d: ev.DeleteFrame(d["uid"]),
    "moveVideo": lambda d: ev.MoveVideoFrame(d["from"], d["after"]),
    "setTemp": lambda d: ev.SetTempFrame(d["uid"], d["temp"]),
    "setCurrent": lambda d: ev.SetCurrentFrame(d),
    "changeMedia": lambda d: ev.ChangeMediaFrame(d["title"], d["id"], d["type"], d["seconds"]),
    "setPlaylistLocked": lambda d: ev.SetPlaylistLockedFrame(d),
    "voteskip": lambda d: ev.VoteskipFrame(d["count"], d["need"]),
}
for _name in ev.IGNORED_EVENTS:
    GOLDEN[_name] = functools.partial(lambda name, d: ev.IgnoredFrame(name), _name)


def test_golden_every_recorded_frame_has_the_right_field_values() -> None:
    checked: dict[str, int] = {}
    for f in frames(direction="in"):
        if f["event"] in LIFECYCLE_EVENTS:
            continue
        parsed = parse_frame(f["event"], f["data"])
        assert parsed == GOLDEN[f["event"]](f["data"]), f
        checked[f["event"]] = checked.get(f["event"], 0) + 1
    assert sum(checked.values()) == 1964 - sum(
        1 for f in frames(direction="in") if f["event"] in LIFECYCLE_EVENTS
    ) - len(frames(direction="out"))
    assert checked["chatMsg"] == 655 and checked["changeMedia"] == 23
    # a changeMedia carries the playback position too (not part of equality)
    media = parse_frame("changeMedia", first("changeMedia", "server-restart"))
    assert isinstance(media, ev.ChangeMediaFrame) and media.paused is False
    assert media.current_time == first("changeMedia", "server-restart")["currentTime"]


def test_chat_frames() -> None:
    hello = parse_frame("chatMsg", first("chatMsg", "chat-basic", msg="hello from roseybot"))
    assert hello == ev.ChatFrame(
        username="roseybot",
        msg_html="hello from roseybot",
        text="hello from roseybot",
        time=1795572856037,
        meta={},
        shadow=False,
        is_server_notice=False,
    )
    assert isinstance(hello.time, int)
    flair = parse_frame("chatMsg", first("chatMsg", "chat-meta", msg="mod flair test"))
    assert isinstance(flair, ev.ChatFrame) and flair.meta == {"modflair": 2}
    shadow = parse_frame("chatMsg", first("chatMsg", "mute", meta={"shadow": True}))
    assert isinstance(shadow, ev.ChatFrame) and shadow.shadow and not shadow.is_server_notice
    notice = parse_frame("chatMsg", first("chatMsg", "clear-chat", username="[server]"))
    assert isinstance(notice, ev.ChatFrame) and notice.is_server_notice
    assert notice.text == "roseybot cleared chat."
    green = parse_frame(
        "chatMsg", first("chatMsg", "chat-escaping-filters", msg="&gt;greentext line")
    )
    assert isinstance(green, ev.ChatFrame) and green.text == ">greentext line"
    # meta is optional (lenient), extra keys are ignored, a float time is accepted
    bare = parse_frame("chatMsg", {"username": "a", "msg": "x", "time": 5.0, "extra": [1]})
    assert isinstance(bare, ev.ChatFrame) and bare.meta == {} and bare.time == 5


def test_pm_frames() -> None:
    d = first("pm", "pm", msg="private reply to bot")
    pm = parse_frame("pm", d)
    assert pm == ev.PmFrame(
        username="alice",
        to="roseybot",
        text="private reply to bot",
        time=1795572868574,
        meta={},
        msg_html="private reply to bot",
    )
    tagged = parse_frame("pm", first("pm", "pm", to="guest_viewer"))
    assert isinstance(tagged, ev.PmFrame) and tagged.text == "pm to a guest <b>x</b>"


def test_user_frames() -> None:
    mod_view = frames("bot-join-then-login", "roseybot", "in")
    userlists = [f["data"] for f in mod_view if f["event"] == "userlist"]
    plain = parse_frame("userlist", userlists[0])
    assert plain == ev.UserlistFrame(
        (ev.UserEntry("testowner", 5.0), ev.UserEntry("guest_viewer", 0.0))
    )
    full = parse_frame("userlist", userlists[1])
    assert isinstance(full, ev.UserlistFrame)
    assert full.users[0].aliases == ("testowner",) and full.users[0].smuted is False
    added = parse_frame("addUser", first("addUser", "guest-login", name="guest_viewer"))
    assert added == ev.AddUserFrame(ev.UserEntry("guest_viewer", 0.0, aliases=("guest_viewer",)))
    assert parse_frame("userLeave", {"name": "alice"}) == ev.UserLeaveFrame("alice")
    offline = first("setUserRank", "owner-sets-bot-rank-offline")
    assert "userrank" in offline  # extra key, ignored
    assert parse_frame("setUserRank", offline) == ev.SetUserRankFrame("roseybot", 2.0, 5.0)
    smuted = first("setUserMeta", "mute", name="guest_viewer")
    meta = parse_frame("setUserMeta", {**smuted, "meta": {**smuted["meta"], "smuted": True}})
    assert meta == ev.SetUserMetaFrame("guest_viewer", afk=False, muted=True, smuted=True)
    assert parse_frame("setAFK", first("setAFK", "afk")) == ev.SetAFKFrame("roseybot", True)
    assert parse_frame("setUserRank", {"name": "x", "rank": 1.5}) == ev.SetUserRankFrame("x", 1.5)
    profile = parse_frame("setUserProfile", first("setUserProfile", "profile-change"))
    assert profile == ev.SetUserProfileFrame("alice", "Alice's test profile <b>text</b>")


def test_session_frames() -> None:
    assert parse_frame("rank", -1) == ev.RankFrame(-1.0)
    assert parse_frame("login", first("login", "bot-join-then-login")) == ev.LoginFrame(
        True, "roseybot"
    )
    assert parse_frame("login", first("login", "guest-login")) == ev.LoginFrame(
        True, "guest_viewer", guest=True
    )
    assert parse_frame("login", first("login", "login-wrong-password")) == ev.LoginFrame(
        False, error="Invalid username/password combination"
    )
    assert parse_frame("kick", first("kick", "duplicate-login")) == ev.KickFrame("Duplicate login")
    assert parse_frame("kick", {"reason": ""}) == ev.KickFrame("")
    bad = first("errorMsg", "chat-bad-frames")
    assert parse_frame("errorMsg", bad) == ev.ErrorMsgFrame(bad["msg"])
    coded = first("errorMsg", "playlist-request")
    assert parse_frame("errorMsg", coded) == ev.ErrorMsgFrame(
        coded["msg"], "REQ_PLAYLIST_LIMIT_REACHED")
    assert parse_frame("noflood", first("noflood", "mute")) == ev.NoFloodFrame(
        "chat", "You have been muted on this channel."
    )
    assert parse_frame("spamFiltered", {"reason": "NEW_USER_CHAT"}) == ev.SpamFilteredFrame(
        "NEW_USER_CHAT"
    )
    cooldowns = {f["data"] for f in frames(direction="in") if f["event"] == "cooldown"}
    assert cooldowns == {100, 1000}
    assert parse_frame("cooldown", 100) == ev.CooldownFrame(100.0)
    assert parse_frame("needPassword", False) == ev.NeedPasswordFrame(False)
    assert parse_frame("needPassword", True) == ev.NeedPasswordFrame(True)
    assert parse_frame("cancelNeedPassword", None) == ev.CancelNeedPasswordFrame()
    assert parse_frame("clearchat", first("clearchat", "clear-chat")) == ev.IgnoredFrame(
        "clearchat")  # nothing in Rosey reads who cleared the chat


def test_channel_frames() -> None:
    media = parse_frame("changeMedia", first("changeMedia", "server-restart"))
    assert media == ev.ChangeMediaFrame(
        title="Test clip C <i>html</i> & co",  # titles are not HTML-escaped
        id="http://127.0.0.1:8099/clip-c.json",
        type="cm",
        seconds=600.0,
    )
    default = parse_frame("channelOpts", first("channelOpts", "guest-join"))
    assert default == ev.ChannelOptsFrame(600.0, False, 4.0, 1.0)
    flood = parse_frame("channelOpts", first("channelOpts", "flood-antiflood-on"))
    assert isinstance(flood, ev.ChannelOptsFrame) and flood.chat_antiflood is True
    assert parse_frame("channelOpts", {}) == ev.ChannelOptsFrame(600.0, False, 4.0, 1.0)
    for name in ("somethingNew", "connect", "chatmsg"):
        assert parse_frame(name, {"x": 1}) == ev.UnknownFrame(name)
    assert parse_frame("emoteList", {"x": 1}) == ev.IgnoredFrame("emoteList")


# ---------------------------------------------------------------- HTML -> text, §6.2

REVERSAL_TABLE = [  # (sent, received) rows of PROTOCOL.md §6.2 that can be reversed
    (
        "<b>bold tag</b> & \"double\" 'single' (parens)",
        "&lt;b&gt;bold tag&lt;/b&gt; &amp; \"double\" 'single' (parens)",
    ),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("already &amp; escaped &lt;x&gt;", "already &amp;amp; escaped &amp;lt;x&amp;gt;"),
    (
        "link https://example.com/path?a=1&b=2 end",
        'link <a href="https://example.com/path?a=1&amp;b=2" target="_blank" '
        'rel="noopener noreferrer">https://example.com/path?a=1&amp;b=2</a> end',
    ),
    ("www.example.com", "www.example.com"),
    (
        "*bold* _italic_ `code` ~~strike~~ [sp]spoiler[/sp]",
        "<strong>bold</strong> <em>italic</em> <code>code</code> <s>strike</s> "
        '<span class="spoiler">spoiler</span>',
    ),
    ("snake_case_word and file_name_here", "snake<em>case</em>word and file<em>name</em>here"),
    (
        "**double star** and __dunder__ here",
        "<strong>*double star</strong>* and <em>_dunder</em>_ here",
    ),
    ("a*b*c and 1 * 2 * 3", "a<strong>b</strong>c and 1 <strong> 2 </strong> 3"),
    ("`inline` and ```triple```", "<code>inline</code> and <code>`</code>triple<code>`</code>"),
    ("unicode: éè 中文 🎉 emoji", "unicode: éè 中文 🎉 emoji"),
    (">greentext line", "&gt;greentext line"),
    ("&" * 320, "&amp;" * 320),
]


@pytest.mark.parametrize(("sent", "received"), REVERSAL_TABLE)
def test_html_to_text_reverses_the_server_filters(sent: str, received: str) -> None:
    assert html_to_text(received) == sent


def test_html_to_text_irreversible_rows_and_other_tags() -> None:
    assert html_to_text("control chars newline bell") == "control chars newline bell"
    assert html_to_text("list: - one - two") == "list: - one - two"
    assert html_to_text('<span class="other">x</span> <b>y</b><br/>z') == "x yz"
    assert (
        html_to_text('<a href="https://e.com/a?b=1&amp;c=2">shown</a>') == "https://e.com/a?b=1&c=2"
    )
    assert html_to_text('<a name="x">kept</a>') == "kept"
    assert html_to_text('<a href="https://e.com">unclosed') == "https://e.comunclosed"
    assert html_to_text("1 < 2 &amp;&amp; 3 > 2") == "1 < 2 && 3 > 2"
    assert html_to_text("") == ""


def test_html_to_text_is_linear_on_hostile_input() -> None:
    started = time.perf_counter()
    for chunk in ('<a x="', "<a ", "<span ", "&amp;", "<em>"):
        html_to_text(chunk * (1 << 16))  # quadratic matching would take minutes
    assert time.perf_counter() - started < 1.0


def test_html_to_text_restores_every_recorded_echo() -> None:
    """Each line roseybot sent in the filter scenarios comes back to its plain text."""
    checked = 0
    for scenario in ("chat-escaping-filters", "chat-markdown", "chat-length", "chat-basic"):
        rows = frames(scenario=scenario, client="roseybot")
        sent = [
            f["data"]["msg"]
            for f in rows
            if f["dir"] == "out"
            and f["event"] == "chatMsg"
            and f["data"]["msg"].strip()
            and not f["data"]["msg"].startswith("/")
        ]
        echoes = [
            f["data"]["msg"]
            for f in rows
            if f["dir"] == "in" and f["event"] == "chatMsg" and f["data"]["username"] == "roseybot"
        ]
        assert len(sent) == len(echoes), scenario
        for raw, echo in zip(sent, echoes, strict=True):
            # steps the server applies before escaping cannot be reversed: cut, control chars
            want = re.sub(r"[\x00-\x1f]+", " ", raw[:320])
            assert html_to_text(echo) == want
            checked += 1
    assert checked >= 20


# ---------------------------------------------------------------- bad input: FrameError only

JUNK: list[Any] = [
    None,
    0,
    -1,
    1.5,
    True,
    False,
    "",
    "text",
    [],
    [None],
    [[{}]],
    {},
    {"": None},
    {"name": None},
    {"name": 1, "rank": "x"},
    {"username": "u", "msg": "m", "time": "1"},
    {"username": "u", "msg": "m", "time": True},
    {"username": "u", "msg": "m", "time": math.nan},
    {"username": "u", "msg": "m", "time": math.inf},
    {"username": "u", "msg": "m", "time": 10**400},
    {"username": "u", "msg": "m", "time": 1, "meta": []},
    {"username": "u", "msg": ["m"], "time": 1},
    {"name": "n", "rank": 1, "meta": {"aliases": "abc"}},
    {"name": "n", "rank": 1, "meta": {"aliases": [1]}},
    {"name": "n", "meta": "x"},
    {"success": "yes"},
    {"chat_antiflood_params": 5},
    {"a": {"b": {"c": [1, {"d": None}]}}},
    10**400,
    math.nan,
    b"bytes",
    object(),
]


def _assert_frame_or_frame_error(event: Any, data: Any) -> None:
    try:
        result = parse_frame(event, data)
    except FrameError:
        return
    assert type(result) in (*EXPECTED_TYPES.values(), ev.UnknownFrame)


@pytest.mark.parametrize("event", [*EXPECTED_TYPES, "unknownEvent"])
def test_junk_raises_only_frame_error(event: str) -> None:
    for data in JUNK:
        _assert_frame_or_frame_error(event, data)


def test_strict_where_it_matters() -> None:
    with pytest.raises(FrameError):
        parse_frame("chatMsg", {"msg": "no username", "time": 1})
    with pytest.raises(FrameError):
        parse_frame("chatMsg", {"username": "u", "msg": 12345, "time": 1})
    with pytest.raises(FrameError):
        parse_frame("chatMsg", {"username": "u", "msg": "no time"})
    with pytest.raises(FrameError):
        parse_frame("chatMsg", {"username": "u", "msg": "bool time", "time": True})
    with pytest.raises(FrameError):
        parse_frame("userlist", {"not": "a list"})
    with pytest.raises(FrameError):
        parse_frame("rank", "2")
    with pytest.raises(FrameError):
        parse_frame(None, {})  # type: ignore[arg-type]
    with pytest.raises(FrameError):
        parse_frame(["chatMsg"], {})  # type: ignore[arg-type]


def test_mutated_real_frames_raise_only_frame_error() -> None:
    rng = random.Random(1964)
    incoming = [f for f in frames(direction="in") if isinstance(f["data"], (dict, list))]
    for _ in range(3000):
        f = rng.choice(incoming)
        data = _mutate(f["data"], rng)
        _assert_frame_or_frame_error(f["event"], data)


def _mutate(data: Any, rng: random.Random) -> Any:
    if isinstance(data, dict) and data:
        out = dict(data)
        key = rng.choice(list(out))
        if rng.random() < 0.3:
            del out[key]
        else:
            out[key] = _mutate(out[key], rng) if rng.random() < 0.3 else rng.choice(JUNK)
        return out
    if isinstance(data, list) and data:
        out_list = list(data)
        i = rng.randrange(len(out_list))
        out_list[i] = _mutate(out_list[i], rng) if rng.random() < 0.5 else rng.choice(JUNK)
        return out_list
    return rng.choice(JUNK)


# ---------------------------------------------------------------- join replay


def _classify(client: str) -> list[tuple[str, bool, bool]]:
    """Feed one recorded client's frames to a filter, as conn does.

    Returns (msg, in_burst, is_replay) per chatMsg; ``in_burst`` is the ground truth:
    the frame arrived between this connection's joinChannel and its first userlist.
    """
    flt = JoinReplayFilter()
    out: list[tuple[str, bool, bool]] = []
    joined = in_burst = False
    for f in frames(client=client):
        event = f["event"]
        if f["dir"] == "in" and event == "connect":
            joined = in_burst = False  # a brand-new socket
        elif f["dir"] == "out" and event == "joinChannel" and not joined:
            joined = in_burst = True  # conn joins once per socket
            flt.on_join_sent()
        elif f["dir"] == "in" and event == "userlist":
            in_burst = False
            flt.on_userlist()
        elif f["dir"] == "in" and event == "chatMsg":
            frame = parse_frame(event, f["data"])
            assert isinstance(frame, ev.ChatFrame)
            out.append((frame.text, in_burst, flt.is_replay(frame.time)))
    return out


def test_replay_filter_on_every_recorded_client() -> None:
    clients = {f["client"] for f in frames(direction="out") if f["event"] == "joinChannel"}
    replays = lives = 0
    for client in sorted(clients):
        for text, in_burst, replay in _classify(client):
            assert replay == in_burst, (client, text)
            replays += replay
            lives += not replay
    assert replays > 200 and lives > 100  # both outcomes are exercised


@pytest.mark.parametrize(
    ("client", "scenario", "live_text"),
    [
        ("roseybot", "bot-join-then-login", "hello from roseybot"),
        ("roseybot#3", "reconnect-rejoin", "bot rejoined, sees this"),
        ("roseybot#autoreconnect", "server-restart", "before restart"),
        ("roseybot#autoreconnect", "server-restart-rejoin", "after rejoin"),
    ],
)
def test_replay_filter_on_named_bursts(client: str, scenario: str, live_text: str) -> None:
    burst = [
        f["data"]["msg"]
        for f in frames(scenario=scenario, client=client, direction="in")
        if f["event"] == "chatMsg"
    ]
    classified = _classify(client)
    replayed = [text for text, _, replay in classified if replay]
    assert len(burst) >= 15
    assert set(burst) - {live_text} <= set(replayed)
    live = [replay for text, _, replay in classified if text == live_text and not replay]
    assert live, f"{live_text!r} must be seen live"


def test_replay_filter_rules() -> None:
    flt = JoinReplayFilter()
    assert flt.is_replay(100) is False  # nothing replayed yet
    flt.on_join_sent()
    assert flt.suppressing
    assert flt.is_replay(500) and flt.is_replay(400)  # any time, while the burst lasts
    flt.on_userlist()
    assert flt.newest_replayed == 500
    assert flt.is_replay(500) is True  # <= newest replayed
    assert flt.is_replay(501) is False
    flt.on_userlist()  # a later userlist (rank crossing 2) changes nothing
    assert flt.is_replay(499) is True
    flt.on_join_sent()  # rejoin: the new burst may repeat older lines
    assert flt.is_replay(450) and flt.is_replay(600)
    flt.on_userlist()
    assert flt.is_replay(600) is True and flt.is_replay(601) is False


def test_events_the_recorder_did_not_provoke() -> None:
    """PROTOCOL §2, §8 and src: queueWarn, spamFiltered; announcement and validationError
    are known and ignored (nothing reads them)."""
    assert parse_frame("announcement", {"title": "T"}) == ev.IgnoredFrame("announcement")
    assert parse_frame("validationError", None) == ev.IgnoredFrame("validationError")
    assert parse_frame("queueWarn", {"msg": "blocked in DE", "link": "u"}) == \
        ev.QueueFailFrame("blocked in DE", "u", warn=True)
    assert parse_frame("spamFiltered", {"reason": "NEW_USER_CHAT_LINK"}) == \
        ev.SpamFilteredFrame("NEW_USER_CHAT_LINK")
    assert parse_frame("moveVideo", {"from": 4, "after": "prepend"}) == \
        ev.MoveVideoFrame(4, "prepend")
    for name in ("newPoll", "chatFilters", "costanza"):
        assert parse_frame(name, {"anything": [1]}) == ev.IgnoredFrame(name)
    with pytest.raises(FrameError):
        parse_frame("userLeave", None)
    with pytest.raises(FrameError):
        parse_frame("usercount", "4")
