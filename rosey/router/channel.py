"""What the router knows about the channel: users, ranks, aliases, now playing. Pure."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rosey.protocol import User


@dataclass
class ChannelState:
    context_size: int = 0
    users: dict[str, User] = field(default_factory=dict)  # lower-case name -> entry
    aliases: dict[str, str] = field(default_factory=dict)  # lower-case name -> limit key
    now_playing: str = ""
    user_count: int = 0
    profiles: dict[str, str] = field(default_factory=dict)  # kept, never sent to a model
    recent: deque[tuple[str, str]] = field(default_factory=deque)

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
        self.profiles.pop(name.lower(), None)

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

    def is_guest(self, name: str) -> bool:
        user = self.users.get(name.lower())
        return user is not None and user.rank < 1

    def heard(self, name: str, text: str) -> None:
        if self.context_size:
            self.recent.append((name, text))

    def context(self, exclude_last: bool = True) -> list[tuple[str, str]]:
        items = list(self.recent)
        return items[:-1] if exclude_last and items else items
