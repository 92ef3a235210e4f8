"""CyTube 3.86 server-side rules for the fake: chat text pipeline, commands, flood limiter,
name rules and the join-burst payloads copied from tests/data/cytube-transcript.jsonl.

Sources: PROTOCOL.md §3, §6.2-§6.5, §10 (src/channel/chat.js, src/channel/filters.js, src/xss.js,
src/utilities.js in calzoneman/sync).
"""

from __future__ import annotations

import math
import re
from typing import Any

CHANNEL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,30}$")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
RESERVED_RES = (
    re.compile(r"^(.*?[-_])?admin(istrator)?([-_].*)?$", re.IGNORECASE),
    re.compile(r"^(.*?[-_])?owner([-_].*)?$", re.IGNORECASE),
)

ERR_INVALID_CHANNEL = (
    "Invalid channel name.  Channel names may consist of 1-30 characters in the set "
    "a-z, A-Z, 0-9, -, and _"
)
ERR_INVALID_USERNAME = (
    "Invalid username.  Usernames must be 1-20 characters long and consist only of "
    "characters a-z, A-Z, 0-9, -, or _."
)
ERR_BAD_PASSWORD = "Invalid username/password combination"
ERR_NO_SUCH_USER = "User does not exist"
ERR_REGISTERED = "That username is registered."
ERR_NAME_IN_USE = "That name is already in use on this channel."
ERR_RESERVED = "That username is reserved."
ERR_PM_ANON = "You must be signed in to send PMs"
ERR_PM_SELF = "You can't PM yourself!"
ERR_GUEST_RATE = "Guest logins are restricted to one per IP address per 60 seconds."
ERR_MUTED = "You have been muted on this channel."

# Chat commands registered by sync 3.86 (chat.js, kickban.js, poll.js, playlist.js, ranks.js).
COMMANDS = frozenset(
    {
        "me", "sp", "say", "shout", "rcv", "a", "afk", "clear",
        "mute", "smute", "unmute", "unsmute",
        "kick", "kickanons", "ban", "ipban", "banip",
        "poll", "hpoll", "clean", "cleantitle", "rank",
    }
)  # fmt: skip
DRINK_RE = re.compile(r"^/d-?[0-9]*")

# src/channel/chat.js LINK; \w spelled out so it stays ASCII like JavaScript's.
LINK_RE = re.compile(
    r"([A-Za-z0-9_]+://(?:[^:/\[\]\s]+|\[[0-9a-f:]+\])(?::\d+)?(?:/[^/\s]*)*)", re.IGNORECASE
)
_LINK_PLACEHOLDER = "\ueeee"
# Default channel filters, applied in this order (src/channel/filters.js).
CHAT_FILTERS = (
    (re.compile(r"`(.+?)`"), r"<code>\1</code>"),
    (re.compile(r"\*(.+?)\*"), r"<strong>\1</strong>"),
    (re.compile(r"_(.+?)_"), r"<em>\1</em>"),
    (re.compile(r"~~(.+?)~~"), r"<s>\1</s>"),
    (re.compile(r"\[sp\](.*?)\[/sp\]", re.IGNORECASE), r'<span class="spoiler">\1</span>'),
)
_CONTROL_RE = re.compile(r"[\x00-\x1f]+")


def js_substring(text: str, length: int) -> str:
    """``text.substring(0, length)`` with JavaScript semantics (UTF-16 code units)."""
    if len(text) <= length // 2:
        return text
    units = text.encode("utf-16-le", "surrogatepass")
    return units[: 2 * length].decode("utf-16-le", "surrogatepass")


def collapse_controls(text: str) -> str:
    return _CONTROL_RE.sub(" ", text)


def escape_html(text: str) -> str:
    """src/xss.js escapeHTML: ``& < > " ' ( )``."""
    for raw, entity in (
        ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"),
        ("'", "&#39;"), ("(", "&#40;"), (")", "&#41;"),
    ):  # fmt: skip
        text = text.replace(raw, entity)
    return text


def _sanitize(text: str, keep_quot: bool = False) -> str:
    """What sanitize-html does to the escaped text: decodes ``&quot; &#39; &#40; &#41;``."""
    text = text.replace("&#39;", "'").replace("&#40;", "(").replace("&#41;", ")")
    return text if keep_quot else text.replace("&quot;", '"')


def filter_message(msg: str) -> str:
    """Steps 4-6 of PROTOCOL §6.2: escape, chat filters + links, sanitize."""
    escaped = escape_html(msg)
    links = LINK_RE.findall(escaped)
    text = LINK_RE.sub(_LINK_PLACEHOLDER, escaped)
    for pattern, repl in CHAT_FILTERS:
        text = pattern.sub(repl, text)
    text = _sanitize(text)
    parts = text.split(_LINK_PLACEHOLDER)
    out = [parts[0]]
    for link, rest in zip(links, parts[1:], strict=False):
        href = _sanitize(link, keep_quot=True)
        out.append(f'<a href="{href}" target="_blank" rel="noopener noreferrer">')
        out.append(f"{_sanitize(link)}</a>{rest}")
    return "".join(out)


def prepare(raw: str, max_length: int) -> str | None:
    """Steps 1-3 of PROTOCOL §6.2: truncate, collapse control chars, drop blank (None)."""
    msg = collapse_controls(js_substring(raw, max_length))
    return msg if msg.strip() else None


def command_of(msg: str) -> str | None:
    """The command a chat line runs on the server (``"kick"``, ``"d"`` for drinks), or None."""
    if not msg.startswith("/"):
        return None
    word = msg[1:].split(" ", 1)[0]
    if word in COMMANDS:
        return word
    return "d" if DRINK_RE.match(msg) else None


def is_reserved(name: str) -> bool:
    return any(r.match(name) for r in RESERVED_RES)


def js_number(x: float) -> float:
    """A number as JavaScript serialises it (2, not 2.0)."""
    return int(x) if x == int(x) else x


def user_entry(name: str, rank: float, viewer_rank: float) -> dict[str, Any]:
    """src/channel/channel.js packUserData; rank >= 2 viewers get the long meta."""
    meta: dict[str, Any] = {"afk": False, "muted": False}
    if viewer_rank >= 2:
        meta.update(smuted=False, aliases=[name], ip="+Jk.uMN.kQP.s5R")
    profile = {"image": "", "text": ""}
    return {"name": name, "rank": js_number(rank), "profile": profile, "meta": meta}


def server_notice(text: str, time_ms: int) -> dict[str, Any]:
    meta = {"addClass": "server-whisper", "addClassToNameAndTimestamp": True}
    return {"username": "[server]", "msg": text, "meta": meta, "time": time_ms}


def login_error(name: str, pw: str, account_pw: str | None, name_in_channel: bool) -> str | None:
    """Why a ``login`` fails (PROTOCOL §3.3), or None. An empty ``pw`` is a guest login."""
    if pw:
        if account_pw is None:
            return ERR_NO_SUCH_USER
        return ERR_BAD_PASSWORD if pw[:100] != account_pw[:100] else None
    if not USERNAME_RE.match(name):
        return ERR_INVALID_USERNAME
    if is_reserved(name):
        return ERR_RESERVED
    if account_pw is not None:
        return ERR_REGISTERED
    return ERR_NAME_IN_USE if name_in_channel else None


def typecheck_error(data: object, key: str) -> str | None:
    """sync's typecheck message for a frame that must be ``{key: string, …}`` (chat-bad-frames)."""
    if not isinstance(data, dict):
        return f"Expected type object, got {js_typeof(data)}"
    if key not in data:
        return f"Missing key: string:{key}"
    if not isinstance(data[key], str):
        return f"Expected key {key} to be of type string, instead got {js_typeof(data[key])}"
    return None


def js_typeof(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if value is not None else "null"


class RateLimiter:
    """src/utilities.js newRateLimiter: burst, then one per 1/sustained s; resets after cooldown."""

    def __init__(self) -> None:
        self.count = 0
        self.last = -math.inf

    def throttle(self, now: float, burst: float, sustained: float, cooldown: float) -> bool:
        if self.last < now - cooldown:
            self.count, self.last = 1, now
            return False
        if self.count < burst:
            self.count += 1
            self.last = now
            return False
        if now - self.last < 1.0 / sustained:
            return True
        self.last = now
        return False


MIN_ANTIFLOOD = {"burst": 20, "sustained": 10, "cooldown": 2}

# ---- join-burst payloads, verbatim from the transcript (scenario guest-join) ----
PERMISSIONS: dict[str, Any] = {
    "seeplaylist": -1, "playlistadd": 1.5, "playlistnext": 1.5, "playlistmove": 1.5,
    "playlistdelete": 2, "playlistjump": 1.5, "playlistaddlist": 1.5, "oplaylistadd": -1,
    "oplaylistnext": 1.5, "oplaylistmove": 1.5, "oplaylistdelete": 2, "oplaylistjump": 1.5,
    "oplaylistaddlist": 1.5, "playlistaddcustom": 3, "playlistaddrawfile": 2,
    "playlistaddlive": 1.5, "exceedmaxlength": 2, "addnontemp": 2, "settemp": 2,
    "playlistshuffle": 2, "playlistclear": 2, "pollctl": 1.5, "pollvote": -1,
    "viewhiddenpoll": 1.5, "voteskip": -1, "viewvoteskip": 1.5, "mute": 1.5, "kick": 1.5,
    "ban": 2, "motdedit": 3, "filteredit": 3, "filterimport": 3, "emoteedit": 3,
    "emoteimport": 3, "playlistlock": 2, "leaderctl": 2, "drink": 1.5, "chat": 0,
    "chatclear": 2, "exceedmaxitems": 2, "deletefromchannellib": 2,
    "exceedmaxdurationperuser": 2,
}  # fmt: skip
_MD5_EMPTY = "1B2M2Y8AsgTpgAmY7PhCfg=="
CHANNEL_CSSJS = {"css": "", "cssHash": _MD5_EMPTY, "js": "", "jsHash": _MD5_EMPTY}
PLAYLIST_META = {"count": 0, "rawTime": 0, "time": "00:00"}


def channel_opts(channel: str, antiflood: bool, params: dict[str, float]) -> dict[str, Any]:
    return {
        "allow_voteskip": True, "voteskip_ratio": 0.5, "afk_timeout": 600, "pagetitle": channel,
        "maxlength": 0, "externalcss": "", "externaljs": "", "chat_antiflood": antiflood,
        "chat_antiflood_params": dict(params), "show_public": False, "enable_link_regex": True,
        "password": False, "allow_dupes": False, "torbanned": False,
        "block_anonymous_users": False, "allow_ascii_control": False,
        "playlist_max_per_user": 0, "new_user_chat_delay": 0, "new_user_chat_link_delay": 0,
        "playlist_max_duration_per_user": 0,
    }  # fmt: skip
