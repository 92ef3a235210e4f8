"""Who is in the channel: the user frames -> router messages, and the roster conn keeps. Pure.

``userlist``, ``addUser``, ``userLeave``, ``setUserRank``, ``setUserMeta``/``setAFK``,
and ``usercount`` (PROTOCOL §4, §5) become the router's ``UserList``, ``UserJoined``, …
(``setUserProfile`` is parsed and counted, not forwarded: nothing reads profiles.)
The session keeps the roster so that a restarted router can be told who is
here (``Session.announce``); what concerns the bot itself (its mute, its AFK) is handed back
to the session. The handlers are merged into the session's table, like ``actions.FORWARDERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rosey.conn import frames as fr
from rosey.protocol import (
    RankChanged,
    User,
    UserCount,
    UserJoined,
    UserLeft,
    UserList,
    UserMeta,
)

if TYPE_CHECKING:
    from rosey.conn.session import Session


def to_user(entry: fr.UserEntry) -> User:
    return User(name=entry.name, rank=entry.rank, afk=entry.afk, muted=entry.muted,
                aliases=list(entry.aliases))


def _userlist(s: Session, f: fr.UserlistFrame) -> None:
    s.replay.on_userlist()
    users = [to_user(u) for u in f.users]
    s.roster = {u.name.lower(): u for u in users}
    s.out.append(UserList(channel=s.channel, users=users))
    for user in f.users:
        if s.is_me(user.name):  # the mute list survives reconnects (chatmuted)
            s.set_muted(user.muted)
    s.set_joined(userlist=True)


def _user_leave(s: Session, f: fr.UserLeaveFrame) -> None:
    # Our own name leaving while we are here is our old socket after a duplicate login
    # (PROTOCOL §5): not "I left". A real leave of ours is a kick or a disconnect.
    if not s.is_me(f.name):
        s.roster.pop(f.name.lower(), None)
        s.out.append(UserLeft(channel=s.channel, name=f.name))


def _add_user(s: Session, f: fr.AddUserFrame) -> None:
    user = s.roster[f.user.name.lower()] = to_user(f.user)
    s.out.append(UserJoined(channel=s.channel, user=user))


def _user_rank(s: Session, f: fr.SetUserRankFrame) -> None:
    if (user := s.roster.get(f.name.lower())) is not None:
        user.rank = f.rank
    s.out.append(RankChanged(channel=s.channel, name=f.name, rank=f.rank))


def _set_user_meta(s: Session, f: fr.SetUserMetaFrame) -> None:
    if (user := s.roster.get(f.name.lower())) is not None:
        user.afk, user.muted = f.afk, f.muted
    if s.is_me(f.name):
        s.own_meta(f.afk, f.muted)
    s.out.append(UserMeta(channel=s.channel, name=f.name, afk=f.afk, muted=f.muted,
                          smuted=f.smuted))


def _set_afk(s: Session, f: fr.SetAFKFrame) -> None:
    # setAFK always follows the setUserMeta that carries the same news: not forwarded twice
    if s.is_me(f.name):
        s.own_meta(f.afk, None)


def _usercount(s: Session, f: fr.UsercountFrame) -> None:
    s.out.append(UserCount(channel=s.channel, count=f.count))


HANDLERS: dict[type, Callable[[Session, Any], None]] = {
    fr.UserlistFrame: _userlist,
    fr.AddUserFrame: _add_user,
    fr.UserLeaveFrame: _user_leave,
    fr.SetUserRankFrame: _user_rank,
    fr.SetUserMetaFrame: _set_user_meta,
    fr.SetAFKFrame: _set_afk,
    fr.UsercountFrame: _usercount,
}
