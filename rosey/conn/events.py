"""CyTube server frames -> typed frames. Pure: no I/O, stdlib only.

Every fact here comes from ``docs/cytube/PROTOCOL.md`` and the frames recorded in
``tests/data/cytube-transcript.jsonl`` (CyTube 3.86). The server sends at most one argument per
frame; ``parse_frame(event, data)`` turns that pair into one of the dataclasses of
:mod:`rosey.conn.frames` through the table ``PARSERS`` (event name -> parser).

Rules:

* A malformed frame (wrong type, missing required key) raises :class:`FrameError` and nothing
  else, whatever the shape of ``data``. The caller logs, counts and goes on.
* Lenient where the server is lenient: extra keys are ignored, ``meta`` may be absent.
* Strict where it matters: ``chatMsg`` needs a str ``username``, a str ``msg`` and a numeric
  ``time`` (epoch ms).
* Known events the bot does not use become :class:`IgnoredFrame`; any other event name becomes
  :class:`UnknownFrame` (counted by the caller, so a server upgrade shows up in metrics).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from rosey.conn import frames as fr
from rosey.conn.frames import *  # noqa: F403 - this module is the public face of the frames
from rosey.conn.htmltext import html_to_text
from rosey.conn.replay import JoinReplayFilter
from rosey.errors import RoseyError

__all__ = ["IGNORED_EVENTS", "KNOWN_EVENTS", "PARSERS", "SERVER_NAME", "FrameError",
           "JoinReplayFilter", "html_to_text", "parse_frame"]

#: ``username`` of server notices (``[server] roseybot joined …``), PROTOCOL §6.6.
SERVER_NAME = "[server]"


class FrameError(RoseyError):
    """A frame whose payload does not have the shape the protocol promises."""


# ---- field helpers ----------------------------------------------------------------------------

_REQUIRED: Any = object()


def _typename(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _obj(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise FrameError(f"expected an object, got {_typename(data)}")
    return data


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(value: str) -> str:
    """Lone UTF-16 surrogates become U+FFFD: the server cuts text in UTF-16 units, so a
    message can end in half an emoji, and such a string cannot be encoded for the router."""
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)


def _str(d: dict[str, Any], key: str, default: Any = _REQUIRED) -> str:
    if key not in d:
        if default is _REQUIRED:
            raise FrameError(f"missing key {key!r}")
        return str(default)
    value = d[key]
    if not isinstance(value, str):
        raise FrameError(f"key {key!r}: expected a string, got {_typename(value)}")
    return _clean(value)


def _number(value: object, what: str) -> float:
    # bool is an int subclass in Python but never a number on the wire
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FrameError(f"{what}: expected a number, got {_typename(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise FrameError(f"{what}: not a finite number")
    return result


def _num(d: dict[str, Any], key: str, default: Any = _REQUIRED) -> float:
    if key not in d:
        if default is _REQUIRED:
            raise FrameError(f"missing key {key!r}")
        return float(default)
    return _number(d[key], f"key {key!r}")


MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's: the server never sends a larger integer


def _int(value: object, what: str) -> int:
    result = _number(value, what)
    if abs(result) > MAX_SAFE_INTEGER:  # nor could it be encoded for the router
        raise FrameError(f"{what}: {result:g} is out of range")
    return int(result)


def _bool(d: dict[str, Any], key: str, default: bool = False) -> bool:
    value = d.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise FrameError(f"key {key!r}: expected a boolean, got {_typename(value)}")
    return value


def _bare_bool(data: object, what: str) -> bool:
    if not isinstance(data, bool):
        raise FrameError(f"{what}: expected a boolean, got {_typename(data)}")
    return data


def _meta(d: dict[str, Any]) -> dict[str, Any]:
    meta = d.get("meta")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise FrameError(f"key 'meta': expected an object, got {_typename(meta)}")
    return dict(meta)


def _after(value: object) -> int | str:
    """``after`` of queue/moveVideo: a uid, or "prepend"/"append"."""
    if isinstance(value, str):
        if value not in ("prepend", "append"):
            raise FrameError(f"key 'after': expected a uid, 'prepend' or 'append', got {value!r}")
        return value
    return _int(value, "key 'after'")


# ---- per-event parsers ------------------------------------------------------------------------


def _chat(data: object) -> fr.ChatFrame:
    d = _obj(data)
    username = _str(d, "username")
    msg = _str(d, "msg")
    meta = _meta(d)
    return fr.ChatFrame(username=username, msg_html=msg, text=html_to_text(msg),
                     time=_int(_num(d, "time"), "key 'time'"), meta=meta,
                     shadow=meta.get("shadow") is True, is_server_notice=username == SERVER_NAME)


def _pm(data: object) -> fr.PmFrame:
    d = _obj(data)
    msg = _str(d, "msg")
    return fr.PmFrame(username=_str(d, "username"), to=_str(d, "to", ""), text=html_to_text(msg),
                   time=_int(_num(d, "time"), "key 'time'"), meta=_meta(d), msg_html=msg)


def _user_entry(data: object) -> fr.UserEntry:
    d = _obj(data)
    meta = _meta(d)
    aliases = meta.get("aliases", ())
    if aliases is None:
        aliases = ()
    if not isinstance(aliases, (list, tuple)) or not all(isinstance(a, str) for a in aliases):
        raise FrameError("meta.aliases: expected a list of strings")
    return fr.UserEntry(name=_str(d, "name"), rank=_num(d, "rank"), afk=_bool(meta, "afk"),
                     muted=_bool(meta, "muted"), smuted=_bool(meta, "smuted"),
                     aliases=tuple(_clean(a) for a in aliases))


def _list(data: object) -> list[Any]:
    if not isinstance(data, list):
        raise FrameError(f"expected an array, got {_typename(data)}")
    return data


def _set_user_rank(data: object) -> fr.SetUserRankFrame:
    d = _obj(data)
    userrank = _num(d, "userrank") if d.get("userrank") is not None else None
    return fr.SetUserRankFrame(_str(d, "name"), _num(d, "rank"), userrank)


def _set_user_meta(data: object) -> fr.SetUserMetaFrame:
    d = _obj(data)
    meta = _obj(d.get("meta"))
    return fr.SetUserMetaFrame(name=_str(d, "name"), afk=_bool(meta, "afk"),
                            muted=_bool(meta, "muted"), smuted=_bool(meta, "smuted"))


def _profile(data: object) -> fr.SetUserProfileFrame:
    d = _obj(data)
    profile = d.get("profile")
    p = {} if profile is None else _obj(profile)
    return fr.SetUserProfileFrame(_str(d, "name"), _str(p, "text", ""), _str(p, "image", ""))


def _login(data: object) -> fr.LoginFrame:
    d = _obj(data)
    success = d.get("success")
    if not isinstance(success, bool):
        raise FrameError(f"key 'success': expected a boolean, got {_typename(success)}")
    return fr.LoginFrame(success=success, name=_str(d, "name", ""), guest=_bool(d, "guest"),
                      error=_str(d, "error", ""))


def _need_password(data: object) -> fr.NeedPasswordFrame:
    return fr.NeedPasswordFrame(False if data is None else _bare_bool(data, "needPassword"))


def _error_msg(data: object) -> fr.ErrorMsgFrame:
    d = _obj(data)
    code = d.get("code")
    return fr.ErrorMsgFrame(_str(d, "msg"), code if isinstance(code, str) else "")


def _media(d: dict[str, Any]) -> fr.Media:
    return fr.Media(title=_str(d, "title", ""), id=_str(d, "id"), type=_str(d, "type"),
                 seconds=_num(d, "seconds", 0))


def _item(data: object) -> fr.PlaylistItem:
    d = _obj(data)
    return fr.PlaylistItem(uid=_int(d.get("uid"), "key 'uid'"), media=_media(_obj(d.get("media"))),
                        temp=_bool(d, "temp"), queueby=_str(d, "queueby", ""))


def _change_media(data: object) -> fr.ChangeMediaFrame:
    d = _obj(data)
    m = _media(d)
    return fr.ChangeMediaFrame(title=m.title, id=m.id, type=m.type, seconds=m.seconds,
                            current_time=_num(d, "currentTime", 0), paused=_bool(d, "paused"))


def _channel_opts(data: object) -> fr.ChannelOptsFrame:
    d = _obj(data)
    params = d.get("chat_antiflood_params")
    p = {} if params is None else _obj(params)
    cooldown = _num(p, "cooldown") if p.get("cooldown") is not None else None
    return fr.ChannelOptsFrame(afk_timeout=_num(d, "afk_timeout", 600),
                            chat_antiflood=_bool(d, "chat_antiflood"),
                            antiflood_burst=_num(p, "burst", 4),
                            antiflood_sustained=_num(p, "sustained", 1),
                            antiflood_cooldown=cooldown)


def _permissions(data: object) -> fr.SetPermissionsFrame:
    d = _obj(data)
    return fr.SetPermissionsFrame({_clean(str(k)): _number(v, f"key {k!r}") for k, v in d.items()})


def _queue_fail(warn: bool) -> Callable[[object], fr.QueueFailFrame]:
    def parse(data: object) -> fr.QueueFailFrame:
        d = _obj(data)
        link, media_id = d.get("link"), d.get("id")
        return fr.QueueFailFrame(_str(d, "msg"), _clean(link) if isinstance(link, str) else "",
                                 warn, _clean(media_id) if isinstance(media_id, str) else "")

    return parse


def _ignored(event: str) -> Callable[[object], fr.IgnoredFrame]:
    return lambda data: fr.IgnoredFrame(event)


def _o(data: object) -> dict[str, Any]:
    return _obj(data)


#: The event table: every event CyTube 3.86 sends (PROTOCOL §3–§8) -> its parser.
PARSERS: dict[str, Callable[[object], fr.Frame]] = {
    # chat §6
    "chatMsg": _chat,
    "pm": _pm,
    "cooldown": lambda data: fr.CooldownFrame(_number(data, "cooldown")),
    "noflood": lambda data: fr.NoFloodFrame(_str(_o(data), "action", ""),
                                            _str(_o(data), "msg", "")),
    "spamFiltered": lambda data: fr.SpamFilteredFrame(_str(_o(data), "reason", "")),
    "errorMsg": _error_msg,
    # users §4–§5
    "userlist": lambda data: fr.UserlistFrame(tuple(_user_entry(u) for u in _list(data))),
    "addUser": lambda data: fr.AddUserFrame(_user_entry(data)),
    "userLeave": lambda data: fr.UserLeaveFrame(_str(_o(data), "name")),
    "setUserRank": _set_user_rank,
    "setUserMeta": _set_user_meta,
    "setAFK": lambda data: fr.SetAFKFrame(_str(_o(data), "name"), _bool(_o(data), "afk")),
    "setUserProfile": _profile,
    "usercount": lambda data: fr.UsercountFrame(_int(data, "usercount")),
    "channelRankFail": lambda data: fr.ChannelRankFailFrame(_str(_o(data), "msg")),
    # session §3
    "rank": lambda data: fr.RankFrame(_number(data, "rank")),
    "login": _login,
    "kick": lambda data: fr.KickFrame(_str(_o(data), "reason", "")),
    "needPassword": _need_password,
    "cancelNeedPassword": lambda data: fr.CancelNeedPasswordFrame(),
    # channel settings §4, §8
    "channelOpts": _channel_opts,
    "setPermissions": _permissions,
    # playlist §7
    "playlist": lambda data: fr.PlaylistFrame(tuple(_item(i) for i in _list(data))),
    "queue": lambda data: fr.QueueFrame(_item(_o(data).get("item")), _after(_o(data).get("after"))),
    "queueFail": _queue_fail(False),
    "queueWarn": _queue_fail(True),
    "delete": lambda data: fr.DeleteFrame(_int(_o(data).get("uid"), "key 'uid'")),
    "moveVideo": lambda data: fr.MoveVideoFrame(_int(_o(data).get("from"), "key 'from'"),
                                             _after(_o(data).get("after"))),
    "setTemp": lambda data: fr.SetTempFrame(_int(_o(data).get("uid"), "key 'uid'"),
                                         _bool(_o(data), "temp")),
    "setCurrent": lambda data: fr.SetCurrentFrame(_int(data, "setCurrent")),
    "changeMedia": _change_media,
    "setPlaylistLocked": lambda data: fr.SetPlaylistLockedFrame(
        _bare_bool(data, "setPlaylistLocked")),
    "voteskip": lambda data: fr.VoteskipFrame(_int(_o(data).get("count"), "key 'count'"),
                                           _int(_o(data).get("need"), "key 'need'")),
}

#: Known events with nothing for the bot (join-burst decoration, polls, filters, emotes, the
#: leader, the media clock, …): parsed no further, so a shape change there cannot matter.
IGNORED_EVENTS = frozenset({
    "clearchat", "setLeader", "channelRanks", "clearVoteskipVote", "channelNotRegistered",
    "announcement", "validationPassed", "validationError", "mediaUpdate", "setPlaylistMeta",
    "drinkCount",
    "emoteList", "channelCSSJS", "setMotd", "listPlaylists", "newPoll", "updatePoll",
    "closePoll", "chatFilters", "updateChatFilter", "deleteChatFilter", "banlist",
    "banlistRemove", "readChanLog", "updateEmote", "renameEmote", "removeEmote",
    "searchResults", "warnLargeChandump", "partitionChange", "costanza",
})
for _event in IGNORED_EVENTS:
    PARSERS[_event] = _ignored(_event)

KNOWN_EVENTS = frozenset(PARSERS)


def parse_frame(event: str, data: object) -> fr.Frame:
    """Turn one server frame into a typed frame; raises only :class:`FrameError`."""
    if not isinstance(event, str):
        raise FrameError(f"event name: expected a string, got {_typename(event)}")
    parser = PARSERS.get(event)
    if parser is None:
        return fr.UnknownFrame(event)
    try:
        return parser(data)
    except FrameError as exc:
        raise FrameError(f"{event}: {exc}") from None
    except Exception as exc:  # defensive: the contract is "only FrameError"
        raise FrameError(f"{event}: {type(exc).__name__}: {exc}") from exc
