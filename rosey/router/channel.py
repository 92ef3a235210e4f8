"""What the router knows about the channel: users, ranks, aliases, now playing. Pure."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rosey.protocol import (
    ChannelPermissions,
    Message,
    Playlist,
    PlaylistCurrent,
    PlaylistDeleted,
    PlaylistMoved,
    PlaylistQueued,
    PlaylistTemp,
    User,
)
from rosey.router.playlist import PlaylistView


@dataclass
class ChannelState:
    context_size: int = 0
    users: dict[str, User] = field(default_factory=dict)  # lower-case name -> entry
    aliases: dict[str, str] = field(default_factory=dict)  # lower-case name -> limit key
    now_playing: str = ""
    user_count: int = 0
    recent: deque[tuple[str, str]] = field(default_factory=deque)
    bot_name: str = ""
    conn_rank: float = -1.0  # the bot's rank as conn last reported it
    playlist: PlaylistView = field(default_factory=PlaylistView)
    permissions: dict[str, float] = field(default_factory=dict)  # {} until setPermissions
    locked: bool = True

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=max(self.context_size, 1))

    def set_users(self, users: list[User]) -> None:
        self.users = {u.name.lower(): u for u in users}
        for user in users:
            self._link(user)

    def joined(self, user: User) -> None:
        self.users[user.name.lower()] = user
        self._link(user)

    def left(self, name: str) -> None:
        self.users.pop(name.lower(), None)

    def meta(self, name: str, *, afk: bool, muted: bool) -> None:
        user = self.users.get(name.lower())
        if user is not None:
            user.afk, user.muted = afk, muted

    def rank_changed(self, name: str, rank: float) -> None:
        user = self.users.get(name.lower())
        if user is not None:
            user.rank = rank

    def _link(self, user: User) -> None:
        """``meta.aliases`` (seen by mods) are the names from the same IP: one limit key
        for all of them, so a re-login under another name does not reset cooldowns."""
        if not user.aliases:
            return
        names = {a.lower() for a in user.aliases} | {user.name.lower()}
        known = {self.aliases[n] for n in names if n in self.aliases}
        key = min(known | names)
        for name in names:
            self.aliases[name] = key
        for name, existing in list(self.aliases.items()):
            if existing in known:
                self.aliases[name] = key

    def limit_key(self, name: str) -> str:
        return self.aliases.get(name.lower(), name.lower())

    def rank_of(self, name: str) -> float:
        user = self.users.get(name.lower())
        return user.rank if user is not None else 0.0

    def exact_name(self, name: str) -> str:
        """People type ``@ALICE``; she is ``Alice``: address users as the server names them."""
        user = self.users.get(name.lstrip("@").lower())
        return user.name if user is not None else name

    @property
    def bot_rank(self) -> float:
        """From the live userlist (setUserRank keeps it current), else conn's last word."""
        me = self.users.get(self.bot_name.lower())
        return me.rank if me is not None else self.conn_rank

    def apply(self, msg: Message) -> bool:
        """Playlist and permission news; False for anything else."""
        pl = self.playlist
        if isinstance(msg, Playlist):
            pl.replace(msg.items)
        elif isinstance(msg, PlaylistQueued):
            pl.queued(msg.item, msg.after)
        elif isinstance(msg, PlaylistDeleted):
            pl.deleted(msg.uid)
        elif isinstance(msg, PlaylistMoved):
            pl.moved(msg.uid, msg.after)
        elif isinstance(msg, PlaylistTemp):
            pl.temp(msg.uid, msg.temp)
        elif isinstance(msg, PlaylistCurrent):
            pl.set_current(msg.uid)
        elif isinstance(msg, ChannelPermissions):
            self.permissions, self.locked = dict(msg.permissions), msg.locked
        else:
            return False
        return True

    def is_guest(self, name: str) -> bool:
        user = self.users.get(name.lower())
        return user is not None and user.rank < 1

    def heard(self, name: str, text: str) -> None:
        if self.context_size:
            self.recent.append((name, text))

    def context(self, exclude_last: bool = True) -> list[tuple[str, str]]:
        items = list(self.recent)
        return items[:-1] if exclude_last and items else items
