"""CyTube server frames -> typed events. Pure: no I/O, stdlib only.

Every fact here comes from ``shared/cytube/PROTOCOL.md`` and the frames recorded in
``shared/cytube/transcript.jsonl`` (CyTube 3.86). The server sends at most one argument per
frame; ``parse_frame(event, data)`` turns that pair into one of the frozen dataclasses below.

Rules:

* A malformed frame (wrong type, missing required key) raises :class:`FrameError` and nothing
  else, whatever the shape of ``data``. The caller logs, counts and goes on.
* Lenient where the server is lenient: extra keys are ignored, ``meta`` may be absent.
* Strict where it matters: ``chatMsg`` needs a str ``username``, a str ``msg`` and a numeric
  ``time`` (epoch ms).
* Events the bot does not need (and unknown events) become :class:`IgnoredFrame`.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SERVER_NAME",
    "AddUserFrame",
    "CancelNeedPasswordFrame",
    "ChangeMediaFrame",
    "ChannelOptsFrame",
    "ChatFrame",
    "ClearChatFrame",
    "CooldownFrame",
    "ErrorMsgFrame",
    "Frame",
    "FrameError",
    "IgnoredFrame",
    "JoinReplayFilter",
    "KickFrame",
    "LoginFrame",
    "NeedPasswordFrame",
    "NoFloodFrame",
    "PmFrame",
    "RankFrame",
    "SetAFKFrame",
    "SetUserMetaFrame",
    "SetUserProfileFrame",
    "SetUserRankFrame",
    "SpamFilteredFrame",
    "UserEntry",
    "UserLeaveFrame",
    "UserlistFrame",
    "html_to_text",
    "parse_frame",
]

#: ``username`` of server notices (``[server] roseybot joined …``), PROTOCOL §6.6.
SERVER_NAME = "[server]"


class FrameError(Exception):
    """A frame whose payload does not have the shape the protocol promises."""


# --------------------------------------------------------------------------------------------
# HTML -> text (PROTOCOL §6.2, DESIGN §9)
# --------------------------------------------------------------------------------------------

# A tag; quoted attribute values may contain '>'. No part of a tag may contain a raw '<' (the
# server escapes it everywhere), so each match attempt stops at the next '<': linear time even
# on hostile 1 MiB frames.
_TAG_RE = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9]*)((?:[^<>"']|"[^"<]*"|'[^'<]*')*)>""")
_ATTR_RE = re.compile(r"""([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
# Reversal of the default chat filters (src/channel/filters.js).
_MARKS = {"strong": "*", "em": "_", "code": "`", "s": "~~"}


def _attrs(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in _ATTR_RE.finditer(raw):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        if value is None:
            value = m.group(4) or ""
        out.setdefault(m.group(1).lower(), value)
    return out


def html_to_text(html_text: str) -> str:
    """Plain text from a received ``msg``: reverses CyTube's filters, unescapes entities.

    ``<strong>x</strong>`` -> ``*x*``, ``<em>`` -> ``_``, ``<code>`` -> backtick, ``<s>`` -> ``~~``,
    ``<span class="spoiler">x</span>`` -> ``[sp]x[/sp]``, ``<a href="U">…</a>`` -> ``U``; any
    other tag is dropped (its text kept); entities are unescaped once.
    """
    out: list[str] = []
    anchor: list[str] | None = None  # text inside an open <a href>, dropped when it closes
    spans: list[str] = []
    pos = 0
    for m in _TAG_RE.finditer(html_text):
        text = html.unescape(html_text[pos : m.start()])
        if anchor is not None:
            anchor.append(text)
        else:
            out.append(text)
        pos = m.end()
        closing = m.group(1) == "/"
        name = m.group(2).lower()
        if name == "a":
            if closing:
                anchor = None
            elif anchor is None:
                href = _attrs(m.group(3)).get("href")
                if href is not None:
                    out.append(html.unescape(href))
                    anchor = []
            continue
        if anchor is not None:
            continue
        if name in _MARKS:
            out.append(_MARKS[name])
        elif name == "span":
            if closing:
                out.append(spans.pop() if spans else "")
            else:
                spoiler = "spoiler" in _attrs(m.group(3)).get("class", "").split()
                out.append("[sp]" if spoiler else "")
                spans.append("[/sp]" if spoiler else "")
    tail = html.unescape(html_text[pos:])
    if anchor is not None:  # unclosed <a>: keep its text rather than lose it
        out.extend(anchor)
    out.append(tail)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatFrame:
    """``chatMsg {username, msg, meta, time}``; also join replays and ``[server]`` notices."""

    username: str
    msg_html: str
    text: str
    time: int  # server epoch ms
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    shadow: bool = False  # meta.shadow: a shadow-muted user's line, only mods see it
    is_server_notice: bool = False  # username == "[server]"


@dataclass(frozen=True, slots=True)
class PmFrame:
    """``pm {username, msg, meta, time, to}``: sent to both sender and recipient."""

    username: str
    to: str
    text: str
    time: int
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    msg_html: str = ""


@dataclass(frozen=True, slots=True)
class UserEntry:
    """One ``userlist`` item or ``addUser`` payload. Mods see ``smuted``/``aliases``."""

    name: str
    rank: float
    afk: bool = False
    muted: bool = False
    smuted: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserlistFrame:
    users: tuple[UserEntry, ...]


@dataclass(frozen=True, slots=True)
class AddUserFrame:
    user: UserEntry


@dataclass(frozen=True, slots=True)
class UserLeaveFrame:
    name: str


@dataclass(frozen=True, slots=True)
class SetUserRankFrame:
    name: str
    rank: float


@dataclass(frozen=True, slots=True)
class SetUserMetaFrame:
    name: str
    afk: bool
    muted: bool
    smuted: bool


@dataclass(frozen=True, slots=True)
class SetAFKFrame:
    name: str
    afk: bool


@dataclass(frozen=True, slots=True)
class RankFrame:
    """``rank <n>``: this socket's own effective rank (-1 anonymous)."""

    rank: float


@dataclass(frozen=True, slots=True)
class LoginFrame:
    success: bool
    name: str = ""
    guest: bool = False
    error: str = ""


@dataclass(frozen=True, slots=True)
class KickFrame:
    """Always followed by a server-side disconnect; no auto-reconnect happens."""

    reason: str


@dataclass(frozen=True, slots=True)
class ErrorMsgFrame:
    msg: str


@dataclass(frozen=True, slots=True)
class NoFloodFrame:
    action: str
    msg: str


@dataclass(frozen=True, slots=True)
class SpamFilteredFrame:
    reason: str


@dataclass(frozen=True, slots=True)
class CooldownFrame:
    """The last chat/pm was dropped by the flood limiter (not queued)."""

    ms: float


@dataclass(frozen=True, slots=True)
class NeedPasswordFrame:
    wrong: bool


@dataclass(frozen=True, slots=True)
class CancelNeedPasswordFrame:
    pass


@dataclass(frozen=True, slots=True)
class ClearChatFrame:
    cleared_by: str


@dataclass(frozen=True, slots=True)
class ChangeMediaFrame:
    title: str
    id: str
    type: str
    seconds: float


@dataclass(frozen=True, slots=True)
class SetUserProfileFrame:
    name: str


@dataclass(frozen=True, slots=True)
class ChannelOptsFrame:
    afk_timeout: float
    chat_antiflood: bool
    antiflood_burst: float
    antiflood_sustained: float


@dataclass(frozen=True, slots=True)
class IgnoredFrame:
    """A known-but-uninteresting or unknown event."""

    event: str


Frame = (
    ChatFrame
    | PmFrame
    | UserlistFrame
    | AddUserFrame
    | UserLeaveFrame
    | SetUserRankFrame
    | SetUserMetaFrame
    | SetAFKFrame
    | RankFrame
    | LoginFrame
    | KickFrame
    | ErrorMsgFrame
    | NoFloodFrame
    | SpamFilteredFrame
    | CooldownFrame
    | NeedPasswordFrame
    | CancelNeedPasswordFrame
    | ClearChatFrame
    | ChangeMediaFrame
    | SetUserProfileFrame
    | ChannelOptsFrame
    | IgnoredFrame
)

# --------------------------------------------------------------------------------------------
# Field helpers
# --------------------------------------------------------------------------------------------

_REQUIRED: Any = object()


def _typename(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _obj(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise FrameError(f"expected an object, got {_typename(data)}")
    return data


def _str(d: dict[str, Any], key: str, default: Any = _REQUIRED) -> str:
    if key not in d:
        if default is _REQUIRED:
            raise FrameError(f"missing key {key!r}")
        return str(default)
    value = d[key]
    if not isinstance(value, str):
        raise FrameError(f"key {key!r}: expected a string, got {_typename(value)}")
    return value


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


def _bool(d: dict[str, Any], key: str, default: bool = False) -> bool:
    value = d.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise FrameError(f"key {key!r}: expected a boolean, got {_typename(value)}")
    return value


def _meta(d: dict[str, Any]) -> dict[str, Any]:
    meta = d.get("meta")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise FrameError(f"key 'meta': expected an object, got {_typename(meta)}")
    return dict(meta)


def _time(d: dict[str, Any]) -> int:
    return int(_num(d, "time"))


# --------------------------------------------------------------------------------------------
# Per-event parsers
# --------------------------------------------------------------------------------------------


def _chat(data: object) -> ChatFrame:
    d = _obj(data)
    username = _str(d, "username")
    msg = _str(d, "msg")
    meta = _meta(d)
    return ChatFrame(
        username=username,
        msg_html=msg,
        text=html_to_text(msg),
        time=_time(d),
        meta=meta,
        shadow=meta.get("shadow") is True,
        is_server_notice=username == SERVER_NAME,
    )


def _pm(data: object) -> PmFrame:
    d = _obj(data)
    msg = _str(d, "msg")
    return PmFrame(
        username=_str(d, "username"),
        to=_str(d, "to", ""),
        text=html_to_text(msg),
        time=_time(d),
        meta=_meta(d),
        msg_html=msg,
    )


def _user_entry(data: object) -> UserEntry:
    d = _obj(data)
    meta = _meta(d)
    aliases = meta.get("aliases", ())
    if aliases is None:
        aliases = ()
    if not isinstance(aliases, (list, tuple)) or not all(isinstance(a, str) for a in aliases):
        raise FrameError("meta.aliases: expected a list of strings")
    return UserEntry(
        name=_str(d, "name"),
        rank=_num(d, "rank"),
        afk=_bool(meta, "afk"),
        muted=_bool(meta, "muted"),
        smuted=_bool(meta, "smuted"),
        aliases=tuple(aliases),
    )


def _userlist(data: object) -> UserlistFrame:
    if not isinstance(data, list):
        raise FrameError(f"expected an array, got {_typename(data)}")
    return UserlistFrame(tuple(_user_entry(item) for item in data))


def _set_user_meta(data: object) -> SetUserMetaFrame:
    d = _obj(data)
    meta = _obj(d.get("meta"))
    return SetUserMetaFrame(
        name=_str(d, "name"),
        afk=_bool(meta, "afk"),
        muted=_bool(meta, "muted"),
        smuted=_bool(meta, "smuted"),
    )


def _login(data: object) -> LoginFrame:
    d = _obj(data)
    success = d.get("success")
    if not isinstance(success, bool):
        raise FrameError(f"key 'success': expected a boolean, got {_typename(success)}")
    return LoginFrame(
        success=success,
        name=_str(d, "name", ""),
        guest=_bool(d, "guest"),
        error=_str(d, "error", ""),
    )


def _need_password(data: object) -> NeedPasswordFrame:
    if data is None:
        return NeedPasswordFrame(False)
    if not isinstance(data, bool):
        raise FrameError(f"expected a boolean, got {_typename(data)}")
    return NeedPasswordFrame(data)


def _clear_chat(data: object) -> ClearChatFrame:
    if data is None:
        return ClearChatFrame("")
    return ClearChatFrame(_str(_obj(data), "clearedBy", ""))


def _change_media(data: object) -> ChangeMediaFrame:
    d = _obj(data)
    return ChangeMediaFrame(
        title=_str(d, "title", ""),
        id=_str(d, "id"),
        type=_str(d, "type"),
        seconds=_num(d, "seconds", 0),
    )


def _channel_opts(data: object) -> ChannelOptsFrame:
    d = _obj(data)
    params = d.get("chat_antiflood_params")
    p = {} if params is None else _obj(params)
    return ChannelOptsFrame(
        afk_timeout=_num(d, "afk_timeout", 600),
        chat_antiflood=_bool(d, "chat_antiflood"),
        antiflood_burst=_num(p, "burst", 4),
        antiflood_sustained=_num(p, "sustained", 1),
    )


_PARSERS: dict[str, Callable[[object], Frame]] = {
    "chatMsg": _chat,
    "pm": _pm,
    "userlist": _userlist,
    "addUser": lambda data: AddUserFrame(_user_entry(data)),
    "userLeave": lambda data: UserLeaveFrame(_str(_obj(data), "name")),
    "setUserRank": lambda data: SetUserRankFrame(
        _str(_obj(data), "name"), _num(_obj(data), "rank")
    ),
    "setUserMeta": _set_user_meta,
    "setAFK": lambda data: SetAFKFrame(_str(_obj(data), "name"), _bool(_obj(data), "afk")),
    "rank": lambda data: RankFrame(_number(data, "rank")),
    "login": _login,
    "kick": lambda data: KickFrame(_str(_obj(data), "reason", "")),
    "errorMsg": lambda data: ErrorMsgFrame(_str(_obj(data), "msg")),
    "noflood": lambda data: NoFloodFrame(
        _str(_obj(data), "action", ""), _str(_obj(data), "msg", "")
    ),
    "spamFiltered": lambda data: SpamFilteredFrame(_str(_obj(data), "reason", "")),
    "cooldown": lambda data: CooldownFrame(_number(data, "cooldown")),
    "needPassword": _need_password,
    "cancelNeedPassword": lambda data: CancelNeedPasswordFrame(),
    "clearchat": _clear_chat,
    "changeMedia": _change_media,
    "setUserProfile": lambda data: SetUserProfileFrame(_str(_obj(data), "name")),
    "channelOpts": _channel_opts,
}


def parse_frame(event: str, data: object) -> Frame:
    """Turn one server frame into a typed frame; raises only :class:`FrameError`."""
    if not isinstance(event, str):
        raise FrameError(f"event name: expected a string, got {_typename(event)}")
    parser = _PARSERS.get(event)
    if parser is None:
        return IgnoredFrame(event)
    try:
        return parser(data)
    except FrameError as exc:
        raise FrameError(f"{event}: {exc}") from None
    except Exception as exc:  # defensive: the contract is "only FrameError"
        raise FrameError(f"{event}: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Join replay (PROTOCOL §3.2, DESIGN §9)
# --------------------------------------------------------------------------------------------


class JoinReplayFilter:
    """Recognises the chat-buffer replay that CyTube sends on every join.

    Rule (DESIGN §9): ignore ``chatMsg`` between the ``joinChannel`` emit and the first
    ``userlist``, and any ``chatMsg`` whose ``time`` is <= the newest replayed ``time``.
    Only server times are compared, never the local clock.
    """

    __slots__ = ("_newest", "_suppressing")

    def __init__(self) -> None:
        self._suppressing = False
        self._newest: int | None = None

    @property
    def suppressing(self) -> bool:
        return self._suppressing

    @property
    def newest_replayed(self) -> int | None:
        return self._newest

    def on_join_sent(self) -> None:
        """Call right before every ``joinChannel`` emit (first join and each rejoin)."""
        self._suppressing = True

    def on_userlist(self) -> None:
        """Call on every ``userlist``; the first one after a join ends the burst."""
        self._suppressing = False

    def is_replay(self, time_ms: int) -> bool:
        """True for a replayed (or older) message; records replayed times while suppressing."""
        if self._suppressing:
            if self._newest is None or time_ms > self._newest:
                self._newest = time_ms
            return True
        return self._newest is not None and time_ms <= self._newest
