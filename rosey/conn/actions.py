"""conn's side of moderator actions, and the playlist frames the router needs. Pure.

* ``FORWARDERS``: playlist and permission frames -> router messages (merged into the
  session's handler table), so the router can keep the playlist exactly as the channel shows it.
* ``ActionTracker``: each typed action from the router becomes exactly one CyTube frame
  (PROTOCOL §7.3; a kick is the chat command ``/kick name reason``, §6.3). The server never
  acknowledges these, so the tracker watches what comes back — the ``queue`` broadcast, a
  ``queueFail``, ``delete``, ``moveVideo``, ``setCurrent``, ``voteskip``, the target's
  ``userLeave``, an ``errorMsg`` — and reports one ``ActionResult`` per action. Requests the
  server does not permit are dropped by it in silence: those end with a timeout.
"""

from __future__ import annotations

import html
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rosey.conn import frames as fr
from rosey.protocol import (
    Action,
    ActionResult,
    ChannelPermissions,
    Kick,
    Message,
    Mute,
    Playlist,
    PlaylistAdd,
    PlaylistCurrent,
    PlaylistDelete,
    PlaylistDeleted,
    PlaylistEntry,
    PlaylistJump,
    PlaylistMove,
    PlaylistMoved,
    PlaylistNext,
    PlaylistQueued,
    PlaylistTemp,
    VoteSkip,
)

if TYPE_CHECKING:
    from rosey.conn.session import Session

VIEW_DELTAS_MAX = 2000  # playlist changes kept since the last full list (a channel's day)
PENDING_MAX = 64  # actions awaiting the server's answer (each ends within ACTION_TIMEOUT)
ACTION_TIMEOUT = 10.0  # a cm manifest or a provider lookup takes the server a few seconds
NAME_RE = re.compile(r"^[\w-]{1,20}$")  # CyTube user names (PROTOCOL §10)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
REASON_MAX = 200
KICK_DENIED = "You do not have permission to kick "
NO_TARGET = "No kick target specified"
SILENT = ("the server did not answer within {:g} s (CyTube ignores requests it does not "
          "permit, or the target is gone)")


def kick_text(name: str, reason: str) -> str:
    """The one chat line a Kick becomes: no control characters, a bounded reason."""
    reason = _CONTROL.sub(" ", reason).strip()[:REASON_MAX]
    return f"/kick {name} {reason}".rstrip()


def entry(item: fr.PlaylistItem) -> PlaylistEntry:
    m = item.media
    return PlaylistEntry(uid=item.uid, title=m.title, id=m.id, type=m.type, seconds=m.seconds,
                         temp=item.temp, queueby=item.queueby)


@dataclass(slots=True)
class _Pending:
    action: Action
    deadline: float


class ActionTracker:
    def __init__(self, channel: str, timeout: float = ACTION_TIMEOUT) -> None:
        self.channel = channel
        self.timeout = timeout
        self.pending: dict[str, _Pending] = {}  # action id -> pending, oldest first
        self.permissions: dict[str, float] = {}
        self.locked = True
        # What the router was told about the playlist since the last full list, so a
        # restarted router can be told again (``replay``): it would otherwise know nothing
        # until the next full list, which CyTube sends only on join.
        self.view_base: Message | None = None
        self.view_deltas: deque[Message] = deque(maxlen=VIEW_DELTAS_MAX)
        self.media: Message | None = None

    def remember(self, msg: Message) -> Message:
        """Record a playlist message on its way to the router; returns it."""
        if isinstance(msg, Playlist):
            self.view_base = msg
            self.view_deltas.clear()
        else:
            self.view_deltas.append(msg)
        return msg

    def remember_media(self, msg: Message) -> Message:
        self.media = msg
        return msg

    def replay(self) -> list[Message]:
        """The channel's playlist, permissions and media, for a router that may be new."""
        out: list[Message] = [self.permissions_message()] if self.permissions else []
        if self.view_base is not None:
            out += [self.view_base, *self.view_deltas]
        if self.media is not None:
            out.append(self.media)
        return out

    def _result(self, action_id: str, ok: bool, detail: str,
                answered: bool = True) -> ActionResult:
        self.pending.pop(action_id, None)
        return ActionResult(channel=self.channel, action_id=action_id, ok=ok, detail=detail,
                            answered=answered)

    def start(self, action: Action, now: float,
              joined: bool) -> tuple[str, Any, ActionResult | None]:
        """(event, data, failure): the frame to send, or why nothing is sent."""
        if not joined:
            return "", None, self._result(action.id, False, "not connected to the channel",
                                          answered=False)
        if action.id in self.pending:  # a re-sent action: the first one is still on its way
            return "", None, None
        if len(self.pending) >= PENDING_MAX:
            return "", None, self._result(action.id, False, "too many actions waiting for "
                                          "the server; try again in a few seconds")
        event, data = _frame(action)
        if not event:
            return "", None, self._result(action.id, False, data)
        self.pending[action.id] = _Pending(action, now + self.timeout)
        return event, data, None

    def observe(self, frame: object, bot_name: str) -> list[ActionResult]:
        """The confirmations and refusals this server frame carries."""
        out: list[ActionResult] = []
        for action_id, p in list(self.pending.items()):
            verdict = _verdict(p.action, frame, bot_name.lower())
            if verdict is not None:
                out.append(self._result(action_id, *verdict))
                if isinstance(frame, (fr.QueueFailFrame, fr.ErrorMsgFrame)):
                    break  # one refusal answers one request
        if not out and isinstance(frame, fr.QueueFailFrame) and not frame.warn:
            # A refusal whose id we cannot match (the server may rewrite it): the oldest add.
            add = next((i for i, p in self.pending.items()
                        if isinstance(p.action, PlaylistAdd)), None)
            if add is not None:
                out.append(self._result(add, False, html.unescape(frame.msg)))
        return out

    def expire(self, now: float) -> list[ActionResult]:
        return [self._result(i, False, SILENT.format(self.timeout), answered=False)
                for i, p in list(self.pending.items()) if p.deadline <= now]

    def fail_all(self, detail: str) -> list[ActionResult]:
        return [self._result(i, False, detail, answered=False) for i in list(self.pending)]

    def permissions_message(self) -> ChannelPermissions:
        return ChannelPermissions(channel=self.channel, permissions=dict(self.permissions),
                                  locked=self.locked)


def _frame(action: Action) -> tuple[str, Any]:
    """The one CyTube frame for an action (PROTOCOL §7.3), or ("", why not)."""
    if isinstance(action, PlaylistAdd):
        return "queue", {"id": action.media_id, "type": action.media_type, "pos": action.pos,
                         "temp": action.temp}
    if isinstance(action, PlaylistDelete):
        return "delete", action.uid
    if isinstance(action, PlaylistMove):
        return "moveMedia", {"from": action.uid, "after": action.after}
    if isinstance(action, PlaylistJump):
        return "jumpTo", action.uid
    if isinstance(action, PlaylistNext):
        return "playNext", None
    if isinstance(action, VoteSkip):
        return "voteskip", None
    if not NAME_RE.match(action.name):
        return "", f"{action.name[:40]!r} is not a CyTube user name"
    if isinstance(action, Kick):
        return "chatMsg", kick_text(action.name, action.reason)
    return "chatMsg", f"/{'mute' if action.muted else 'unmute'} {action.name}"


def _verdict(action: Action, f: object, bot: str) -> tuple[bool, str] | None:
    """(ok, detail) when ``f`` settles ``action``; None when it says nothing about it."""
    if isinstance(action, PlaylistAdd):
        if isinstance(f, fr.QueueFrame) and f.item.queueby.lower() == bot and (
                f.item.media.id == action.media_id or action.media_type == f.item.media.type
                == "cu"):
            return True, f.item.media.title
        if isinstance(f, fr.QueueFailFrame) and not f.warn and f.id == action.media_id:
            return False, html.unescape(f.msg)
    elif isinstance(action, PlaylistDelete):
        if isinstance(f, fr.DeleteFrame) and f.uid == action.uid:
            return True, ""
    elif isinstance(action, PlaylistMove):
        if isinstance(f, fr.MoveVideoFrame) and f.uid == action.uid:
            return True, ""
    elif isinstance(action, PlaylistJump):
        if isinstance(f, fr.SetCurrentFrame) and f.uid == action.uid:
            return True, ""
    elif isinstance(action, PlaylistNext):
        if isinstance(f, fr.SetCurrentFrame):
            return True, ""
    elif isinstance(action, VoteSkip):
        if isinstance(f, fr.VoteskipFrame):
            return True, f"{f.count} of {f.need} votes"
        if isinstance(f, fr.SetCurrentFrame):
            return True, "the vote passed"
    elif isinstance(action, Kick):
        if isinstance(f, fr.UserLeaveFrame) and f.name.lower() == action.name.lower():
            return True, ""
        if isinstance(f, fr.ErrorMsgFrame) and (
                f.msg.lower() == (KICK_DENIED + action.name).lower() or
                f.msg.startswith(NO_TARGET)):
            return False, f.msg
    else:
        return _mute_verdict(action, f, bot)
    return None


def _mute_verdict(action: Mute, f: object, bot: str) -> tuple[bool, str] | None:
    """src/channel/chat.js handleCmdMute / handleCmdUnmute."""
    name = action.name.lower()
    if isinstance(f, fr.SetUserMetaFrame) and f.name.lower() == name and \
            f.muted == action.muted:
        return True, ""
    verb = "muted" if action.muted else "unmuted"
    if isinstance(f, fr.ChatFrame) and f.is_server_notice and \
            f.text.lower() == f"{bot} {verb} {name}":  # an absent name is unmuted too
        return True, ""
    if isinstance(f, fr.ErrorMsgFrame) and name in f.msg.lower() and (
            f.msg.startswith(("/mute ", "/unmute ")) or f.msg.endswith(" is not muted.")):
        return False, f.msg
    return None


# ---- playlist and permission frames -> router -------------------------------------------------


def _permissions(s: Session, f: fr.SetPermissionsFrame) -> None:
    s.actions.permissions = dict(f.permissions)
    s.out.append(s.actions.permissions_message())


def _locked(s: Session, f: fr.SetPlaylistLockedFrame) -> None:
    s.actions.locked = f.locked
    s.out.append(s.actions.permissions_message())


def _playlist(s: Session, f: fr.PlaylistFrame) -> None:
    s.out.append(s.actions.remember(
        Playlist(channel=s.actions.channel, items=[entry(i) for i in f.items])))


def _queue(s: Session, f: fr.QueueFrame) -> None:
    s.out.append(s.actions.remember(
        PlaylistQueued(channel=s.actions.channel, item=entry(f.item), after=f.after)))


def _delete(s: Session, f: fr.DeleteFrame) -> None:
    s.out.append(s.actions.remember(PlaylistDeleted(channel=s.actions.channel, uid=f.uid)))


def _move(s: Session, f: fr.MoveVideoFrame) -> None:
    s.out.append(s.actions.remember(
        PlaylistMoved(channel=s.actions.channel, uid=f.uid, after=f.after)))


def _temp(s: Session, f: fr.SetTempFrame) -> None:
    s.out.append(s.actions.remember(
        PlaylistTemp(channel=s.actions.channel, uid=f.uid, temp=f.temp)))


def _current(s: Session, f: fr.SetCurrentFrame) -> None:
    s.out.append(s.actions.remember(PlaylistCurrent(channel=s.actions.channel, uid=f.uid)))


FORWARDERS: dict[type, Callable[[Session, Any], None]] = {
    fr.PlaylistFrame: _playlist,
    fr.QueueFrame: _queue,
    fr.DeleteFrame: _delete,
    fr.MoveVideoFrame: _move,
    fr.SetTempFrame: _temp,
    fr.SetCurrentFrame: _current,
    fr.SetPermissionsFrame: _permissions,
    fr.SetPlaylistLockedFrame: _locked,
}
