"""Wire messages for moderation: the playlist as conn sees it, and typed moderator actions.

Part of the wire schema of :mod:`rosey.protocol` (which decodes them); this module imports
nothing of Rosey but ``Message``. conn maps each action to exactly one CyTube frame
(docs/cytube/PROTOCOL.md §7.3, §6.3). The LLM reply path only ever makes a ``Say``, so no model
output can become an action: only the router's command table builds them.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from rosey.protocol_base import Message

# ---- conn -> router: the playlist and permissions ---------------------------


class PlaylistEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One playlist item as the server sent it (``title`` verbatim, not escaped)."""

    uid: int
    title: str
    id: str
    type: str
    seconds: float = 0.0
    temp: bool = False
    queueby: str = ""


class Playlist(Message, tag="playlist"):
    """``playlist``: the whole list again (join, reload, shuffle, clear); uids may be new."""

    channel: str
    items: list[PlaylistEntry]


class PlaylistQueued(Message, tag="playlist_queued"):
    """``queue``: ``after`` is the uid of the previous item or "prepend"."""

    channel: str
    item: PlaylistEntry
    after: int | str


class PlaylistDeleted(Message, tag="playlist_deleted"):
    channel: str
    uid: int


class PlaylistMoved(Message, tag="playlist_moved"):
    """``moveVideo``: ``after`` is a uid, "prepend" or "append"."""

    channel: str
    uid: int
    after: int | str


class PlaylistTemp(Message, tag="playlist_temp"):
    channel: str
    uid: int
    temp: bool


class PlaylistCurrent(Message, tag="playlist_current"):
    """``setCurrent``: the uid that plays now."""

    channel: str
    uid: int


class ChannelPermissions(Message, tag="channel_permissions"):
    """``setPermissions`` (minimum rank per action) and ``setPlaylistLocked``."""

    channel: str
    permissions: dict[str, float]
    locked: bool = True


class ActionResult(Message, tag="action_result"):
    """What became of one moderator action: confirmed by the server, refused (``detail`` is
    the server's reason), or unanswered (the server ignores requests it does not permit)."""

    channel: str
    action_id: str
    ok: bool
    detail: str = ""
    answered: bool = True  # False: timed out or disconnected (``detail`` says which)


# ---- router -> conn: typed moderator actions -------------------------------


class PlaylistAdd(Message, tag="playlist_add"):
    """``queue {id, type, pos, temp}``."""

    id: str  # action id
    channel: str
    media_id: str
    media_type: str
    pos: Literal["end", "next"] = "end"
    temp: bool = True


class PlaylistDelete(Message, tag="playlist_delete"):
    """``delete uid``."""

    id: str
    channel: str
    uid: int


class PlaylistMove(Message, tag="playlist_move"):
    """``moveMedia {from, after}``."""

    id: str
    channel: str
    uid: int
    after: int | str


class PlaylistJump(Message, tag="playlist_jump"):
    """``jumpTo uid``."""

    id: str
    channel: str
    uid: int


class PlaylistNext(Message, tag="playlist_next"):
    """``playNext``."""

    id: str
    channel: str


class VoteSkip(Message, tag="voteskip"):
    """``voteskip``."""

    id: str
    channel: str


class Kick(Message, tag="kick"):
    """The chat command ``/kick name reason``: conn builds the text from these fields."""

    id: str
    channel: str
    name: str
    reason: str = ""


class Mute(Message, tag="mute"):
    """The chat command ``/mute name`` (``muted``) or ``/unmute name``."""

    id: str
    channel: str
    name: str
    muted: bool = True


ACTIONS = (PlaylistAdd, PlaylistDelete, PlaylistMove, PlaylistJump, PlaylistNext, VoteSkip, Kick,
           Mute)
Action = (PlaylistAdd | PlaylistDelete | PlaylistMove | PlaylistJump | PlaylistNext | VoteSkip
          | Kick | Mute)

__all__ = ["ACTIONS", "Action", "ActionResult", "ChannelPermissions", "Kick", "Mute", "Playlist",
           "PlaylistAdd", "PlaylistCurrent", "PlaylistDelete", "PlaylistDeleted",
           "PlaylistEntry", "PlaylistJump", "PlaylistMove", "PlaylistMoved", "PlaylistNext",
           "PlaylistQueued", "PlaylistTemp", "VoteSkip"]


#: What conn sends up about the playlist, permissions and action verdicts (the router's
#: ``ipc://RUN/conn`` socket accepts these besides the chat events).
MODERATION_UP = (Playlist, PlaylistQueued, PlaylistDeleted, PlaylistMoved, PlaylistTemp,
                 PlaylistCurrent, ChannelPermissions, ActionResult)
