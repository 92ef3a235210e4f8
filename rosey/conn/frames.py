"""Typed CyTube 3.86 server frames (docs/cytube/PROTOCOL.md §3–§8). Pure data: frozen dataclasses.

``events.parse_frame`` builds them; the shapes of the payloads are documented where they are
parsed. Field names follow the wire where they are clear, snake_case otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ---- chat (§6) --------------------------------------------------------------------------------


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
class CooldownFrame:
    """The last chat/pm was dropped by the flood limiter (not queued); ``ms`` until the next."""

    ms: float


@dataclass(frozen=True, slots=True)
class NoFloodFrame:
    """Our chat was refused because the channel muted us."""

    action: str
    msg: str


@dataclass(frozen=True, slots=True)
class SpamFilteredFrame:
    """``NEW_USER_CHAT`` / ``NEW_USER_CHAT_LINK``: the account is too new to chat (or link)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ErrorMsgFrame:
    msg: str
    code: str = ""


# ---- users and ranks (§4, §5) -----------------------------------------------------------------


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
    """``userrank`` is only present when the target was absent (the DB was updated)."""

    name: str
    rank: float
    userrank: float | None = None


@dataclass(frozen=True, slots=True)
class SetUserMetaFrame:
    name: str
    afk: bool
    muted: bool
    smuted: bool


@dataclass(frozen=True, slots=True)
class SetAFKFrame:
    """Legacy frame, always right after the AFK ``setUserMeta``."""

    name: str
    afk: bool


@dataclass(frozen=True, slots=True)
class SetUserProfileFrame:
    name: str
    text: str = ""
    image: str = ""


@dataclass(frozen=True, slots=True)
class UsercountFrame:
    count: int


@dataclass(frozen=True, slots=True)
class ChannelRankFailFrame:
    msg: str


# ---- session (§3) -----------------------------------------------------------------------------


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
class NeedPasswordFrame:
    wrong: bool


@dataclass(frozen=True, slots=True)
class CancelNeedPasswordFrame:
    pass


# ---- channel settings (§4, §8) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelOptsFrame:
    afk_timeout: float
    chat_antiflood: bool
    antiflood_burst: float
    antiflood_sustained: float
    antiflood_cooldown: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SetPermissionsFrame:
    """Minimum rank per action (``chat``, ``kick``, …)."""

    permissions: dict[str, float]


# ---- playlist (§7) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Media:
    title: str
    id: str
    type: str
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class PlaylistItem:
    uid: int
    media: Media
    temp: bool = False
    queueby: str = ""


@dataclass(frozen=True, slots=True)
class PlaylistFrame:
    items: tuple[PlaylistItem, ...]


@dataclass(frozen=True, slots=True)
class QueueFrame:
    item: PlaylistItem
    after: int | str  # uid of the previous item or "prepend"


@dataclass(frozen=True, slots=True)
class QueueFailFrame:
    msg: str
    link: str = ""
    warn: bool = False  # queueWarn: added, with a warning
    id: str = ""  # the media id the client sent (queueFail only)


@dataclass(frozen=True, slots=True)
class DeleteFrame:
    uid: int


@dataclass(frozen=True, slots=True)
class MoveVideoFrame:
    uid: int
    after: int | str


@dataclass(frozen=True, slots=True)
class SetTempFrame:
    uid: int
    temp: bool


@dataclass(frozen=True, slots=True)
class SetCurrentFrame:
    uid: int


@dataclass(frozen=True, slots=True)
class ChangeMediaFrame:
    title: str
    id: str
    type: str
    seconds: float
    current_time: float = field(default=0.0, compare=False)
    paused: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class SetPlaylistLockedFrame:
    locked: bool


@dataclass(frozen=True, slots=True)
class VoteskipFrame:
    count: int
    need: int


# ---- the rest ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IgnoredFrame:
    """A known event the bot has no use for (emotes, CSS, polls, filters, …)."""

    event: str


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """An event CyTube 3.86 does not send: counted, never fatal."""

    event: str


Frame = (
    ChatFrame | PmFrame | CooldownFrame | NoFloodFrame | SpamFilteredFrame | ErrorMsgFrame
    | UserlistFrame | AddUserFrame | UserLeaveFrame | SetUserRankFrame | SetUserMetaFrame
    | SetAFKFrame | SetUserProfileFrame | UsercountFrame | ChannelRankFailFrame | RankFrame
    | LoginFrame | KickFrame | NeedPasswordFrame | CancelNeedPasswordFrame | ChannelOptsFrame
    | SetPermissionsFrame | PlaylistFrame | QueueFrame | QueueFailFrame | DeleteFrame
    | MoveVideoFrame | SetTempFrame | SetCurrentFrame | ChangeMediaFrame
    | SetPlaylistLockedFrame | VoteskipFrame | IgnoredFrame | UnknownFrame
)  # fmt: skip
