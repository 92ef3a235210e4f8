"""The router's copy of the channel playlist, in the order the channel shows it. Pure.

Kept by applying the server's own events (PROTOCOL §7.2) the way CyTube's client does:
``queue`` inserts after a uid (or at the front for "prepend"), ``delete`` removes,
``moveVideo`` re-inserts after a uid / "prepend" / "append", ``setTemp`` flags,
``setCurrent`` marks what plays, and a full ``playlist`` replaces everything (uids may be
renumbered then, so nothing keyed by uid survives it). Positions are 1-based, as people count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rosey.protocol import PlaylistEntry

MAX_ITEMS = 4000  # CyTube's own MAX_ITEMS; a bound on what a broken server could make us keep


@dataclass
class PlaylistView:
    items: list[PlaylistEntry] = field(default_factory=list)
    current: int | None = None  # uid of what plays now

    def replace(self, items: list[PlaylistEntry]) -> None:
        self.items = list(items[:MAX_ITEMS])
        if self.current is not None and self.index(self.current) is None:
            self.current = None

    def index(self, uid: int) -> int | None:
        return next((i for i, item in enumerate(self.items) if item.uid == uid), None)

    def queued(self, item: PlaylistEntry, after: int | str) -> None:
        self.deleted(item.uid)  # a uid is unique: never keep two copies
        if len(self.items) >= MAX_ITEMS:
            return
        self.items.insert(self._slot(after), item)

    def _slot(self, after: int | str) -> int:
        if after == "prepend":
            return 0
        if isinstance(after, int):
            found = self.index(after)
            if found is not None:
                return found + 1
        return len(self.items)  # "append", or a uid we do not know: the end

    def deleted(self, uid: int) -> None:
        found = self.index(uid)
        if found is not None:
            del self.items[found]
        if self.current == uid:
            self.current = None

    def moved(self, uid: int, after: int | str) -> None:
        found = self.index(uid)
        if found is None:
            return
        item = self.items.pop(found)
        self.items.insert(self._slot(after), item)

    def temp(self, uid: int, temp: bool) -> None:
        found = self.index(uid)
        if found is not None:
            self.items[found].temp = temp

    def set_current(self, uid: int) -> None:
        self.current = uid

    # ---- reading -----------------------------------------------------------------------------

    def position(self, uid: int) -> int | None:
        found = self.index(uid)
        return None if found is None else found + 1

    def at(self, position: int) -> PlaylistEntry | None:
        return self.items[position - 1] if 1 <= position <= len(self.items) else None

    def now_playing(self) -> PlaylistEntry | None:
        found = None if self.current is None else self.index(self.current)
        return None if found is None else self.items[found]

    def up_next(self) -> PlaylistEntry | None:
        """What CyTube plays next: the item after the current one, else the first."""
        found = None if self.current is None else self.index(self.current)
        if found is None or len(self.items) < 2:
            return None
        return self.items[(found + 1) % len(self.items)]

    def find(self, words: str) -> list[PlaylistEntry]:
        """Items whose title contains every word (any case)."""
        wanted = words.lower().split()
        return [item for item in self.items
                if wanted and all(word in item.title.lower() for word in wanted)]
