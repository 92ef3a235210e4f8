"""The fake CyTube's playlist, voteskip and ``/kick`` (src/channel/playlist.js, voteskip.js,
kickban.js of CyTube 3.86), as recorded in the transcript scenarios ``playlist-queue``,
``playlist-move-delete-jump``, ``playlist-end-of-item`` and ``kick``.

The server's permission checks are the real ones (``hasPermission`` with the ``o…`` twins
while the playlist is unlocked), and so are its answers: requests a rank may not make are
dropped in silence, type permissions and lookups fail with ``queueFail`` (sender only), a kick
of an equal or higher rank gets ``errorMsg``. Media lookups use a catalog (``add_media``)
instead of the providers; a ``cm`` manifest missing from it fails as a 404 did when recorded.
Items never end by themselves (no playback clock): ``jumpTo``/``playNext``/``delete`` move on.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from fakes import cytube_filters as cf
from fakes.cytube_base import FakeCytubeBase, _Sock, _User

KNOWN_TYPES = frozenset({"yt", "vi", "dm", "sc", "li", "tw", "tv", "tc", "rt", "cu", "gd", "fi",
                         "hl", "sb", "cm", "yp", "pt", "bc", "bn", "od", "nv"})
LIVE_TYPES = frozenset({"li", "tw", "rt", "cu", "hl"})
ERR_404 = "Expected HTTP 200 OK, not 404 Not Found"
KICK_NO_TARGET = ("No kick target specified.  If you're trying to kick anonymous users, use "
                  "/kickanons")


def format_time(seconds: float) -> str:
    """src/utilities.js formatTime."""
    sec = math.floor(seconds)
    hours, sec = divmod(sec, 3600) if sec >= 3600 else (None, sec)
    text = f"{sec // 60:02d}:{sec % 60:02d}"
    return text if hours is None else f"{hours:02d}:{text}"


@dataclass
class _Item:
    uid: int
    media: dict[str, Any]
    temp: bool
    queueby: str

    def pack(self) -> dict[str, Any]:
        return {"media": self.media, "uid": self.uid, "temp": self.temp, "queueby": self.queueby}


@dataclass
class _Playlist:
    items: list[_Item] = field(default_factory=list)
    current: _Item | None = None
    next_uid: int = 0

    def find(self, uid: object) -> _Item | None:
        return next((i for i in self.items if i.uid == uid), None)

    def after_of(self, item: _Item) -> int | str:
        at = self.items.index(item)
        return self.items[at - 1].uid if at > 0 else "prepend"

    def next_of(self, item: _Item) -> _Item | None:
        at = self.items.index(item)
        return self.items[at + 1] if at + 1 < len(self.items) else (
            self.items[0] if self.items else None)


class FakeCytubePlaylist(FakeCytubeBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.permissions: dict[str, Any] = dict(cf.PERMISSIONS)
        self.playlist_locked = True
        self.pl = _Playlist()
        self.catalog: dict[tuple[str, str], tuple[str, float, dict[str, Any]]] = {}
        self.voteskips: set[str] = set()  # ips (voteskip.js counts one vote per IP)
        self._queue_limiters: dict[str, cf.RateLimiter] = {}

    # ---------------------------------------------------------------- test control API
    def add_media(self, media_type: str, media_id: str, title: str, seconds: float = 30,
                  meta: dict[str, Any] | None = None) -> None:
        """What the server's lookup (InfoGetter / the cm manifest) finds for this id."""
        self.catalog[(media_type, media_id)] = (title, seconds, meta or {})

    @property
    def playlist_titles(self) -> list[str]:
        return [item.media["title"] for item in self.pl.items]

    def may(self, rank: float, node: str) -> bool:
        """src/channel/permissions.js hasPermission."""
        if node.startswith("playlist") and not self.playlist_locked and \
                rank >= self.permissions["o" + node]:
            return True
        return rank >= float(self.permissions[node])

    # ---------------------------------------------------------------- helpers
    def _rank_of(self, s: _Sock) -> float:
        user = self._members.get(s.name.lower()) if s.name else None
        return user.rank if user is not None else s.rank

    def _meta_payload(self) -> dict[str, Any]:
        raw = sum(i.media["seconds"] for i in self.pl.items)
        return {"count": len(self.pl.items), "rawTime": cf.js_number(raw),
                "time": format_time(raw)}

    async def _send_playlist(self, sid: str) -> None:
        """``setPlaylistMeta`` + ``playlist`` as in the join burst."""
        await self._emit(sid, "setPlaylistMeta", self._meta_payload())
        await self._emit(sid, "playlist", [i.pack() for i in self.pl.items])

    async def _start_playback(self) -> None:
        item = self.pl.current
        if item is None:
            return
        self.voteskips.clear()
        self.media = {**item.media, "currentTime": -3 if item.media["seconds"] else 0,
                      "paused": bool(item.media["seconds"])}
        await self._broadcast("setCurrent", item.uid)
        await self._broadcast("changeMedia", self.media)
        await self._broadcast("drinkCount", 0)
        await self._broadcast("voteskip", {"count": 0, "need": 0},
                              min_rank=self.permissions["viewvoteskip"])

    async def _delete(self, item: _Item) -> None:
        nxt = self.pl.next_of(item)
        self.pl.items.remove(item)
        await self._broadcast("delete", {"uid": item.uid})
        await self._broadcast("setPlaylistMeta", self._meta_payload())
        if self.pl.current is item and nxt is item:
            self.pl.current = None
            self.media = None
        elif self.pl.current is item:
            self.pl.current = nxt
            await self._start_playback()

    async def _queue_fail(self, s: _Sock, msg: str, media_id: Any, link: str = "") -> None:
        await self._emit(s.sid, "queueFail", {"msg": msg, "link": link, "id": media_id})

    # ---------------------------------------------------------------- client events
    async def _queue(self, s: _Sock, data: Any) -> None:
        if not s.joined or not isinstance(data, dict) or data.get("pos") not in ("next", "end"):
            return
        rank, kind, media_id = self._rank_of(s), data.get("type"), data.get("id")
        if not self.may(rank, "playlistadd") or (data["pos"] == "next" and
                                                 not self.may(rank, "playlistnext")):
            return
        link = str(media_id) if kind in ("cm", "fi", "rt", "hl", "sc") else ""
        for needed, node, msg in (
                (kind == "yp", "playlistaddlist", "You don't have permission to add playlists"),
                (kind in LIVE_TYPES, "playlistaddlive", "You don't have permission to add "
                                                        "live media"),
                (kind == "cu", "playlistaddcustom", "You don't have permission to add custom "
                                                    "embeds"),
                (kind in ("fi", "cm"), "playlistaddrawfile", "You don't have permission to add "
                                                             "raw video files")):
            if needed and not self.may(rank, node):
                await self._queue_fail(s, msg, media_id, link)
                return
        temp = bool(data.get("temp")) or not self.may(rank, "addnontemp")
        burst, sustained = (10, 2) if rank >= 2 else (3, 1)
        limiter = self._queue_limiters.setdefault(s.sid, cf.RateLimiter())
        if limiter.throttle(time.monotonic(), burst, sustained, burst / sustained):
            await self._queue_fail(s, "You are adding videos too quickly", media_id, link)
            return
        if kind not in KNOWN_TYPES:
            await self._queue_fail(s, f"Unknown media type &#39;{kind}&#39;", media_id)
            return
        found = self.catalog.get((str(kind), str(media_id)))
        if kind == "cu":  # src/customembed.js: the id is a hash of the embed code
            src = re.search(r'src="([^"]+)"', str(media_id))
            found = (str(data.get("title") or "Custom Media"), 0,
                     {"embed": {"tag": "iframe", "src": src.group(1) if src else ""}})
            media_id = "cu:" + base64.b64encode(hashlib.sha256(str(media_id).encode())
                                                 .digest()).decode()
        if found is None:
            await self._queue_fail(s, ERR_404 if kind == "cm" else "Media not found", media_id,
                                   link)
            return
        existing = next((i for i in self.pl.items if i.media["id"] == media_id), None)
        if existing is not None and (data["pos"] == "end" or existing is self.pl.current):
            await self._queue_fail(s, "This item is already on the playlist", media_id, link)
            return
        title, seconds, meta = found
        media = {"id": media_id, "title": title, "seconds": cf.js_number(seconds),
                 "duration": format_time(seconds) if seconds else "--:--", "type": kind,
                 "meta": meta}
        item = _Item(self.pl.next_uid, media, temp, s.name or "")
        self.pl.next_uid += 1
        current = self.pl.current
        at = self.pl.items.index(current) + 1 if data["pos"] == "next" and current else (
            0 if data["pos"] == "next" else len(self.pl.items))
        self.pl.items.insert(at, item)
        await self._broadcast("queue", {"item": item.pack(), "after": self.pl.after_of(item)})
        await self._broadcast("setPlaylistMeta", self._meta_payload())
        if self.pl.current is None:
            self.pl.current = item
            await self._start_playback()

    async def _delete_event(self, s: _Sock, data: Any) -> None:
        if not s.joined or not self.may(self._rank_of(s), "playlistdelete") or \
                not isinstance(data, int) or isinstance(data, bool):
            return
        item = self.pl.find(data)
        if item is not None:
            await self._delete(item)

    async def _move_media(self, s: _Sock, data: Any) -> None:
        if not s.joined or not isinstance(data, dict) or \
                not self.may(self._rank_of(s), "playlistmove"):
            return
        item, after = self.pl.find(data.get("from")), data.get("after")
        target = self.pl.find(after)
        if item is None or item is target or (target is None and after not in
                                              ("prepend", "append")):
            return
        self.pl.items.remove(item)
        at = 0 if after == "prepend" else (len(self.pl.items) if after == "append" else
                                            self.pl.items.index(target) + 1)  # type: ignore[arg-type]
        self.pl.items.insert(at, item)
        await self._broadcast("moveVideo", data)

    async def _jump_to(self, s: _Sock, data: Any) -> None:
        if not s.joined or not isinstance(data, (int, str)) or \
                not self.may(self._rank_of(s), "playlistjump"):
            return
        to = self.pl.find(data)
        if to is None:
            return
        old, self.pl.current = self.pl.current, to
        if old is not None and old.temp and old is not to:  # recorded: delete comes first
            self.pl.items.remove(old)
            await self._broadcast("delete", {"uid": old.uid})
            await self._broadcast("setPlaylistMeta", self._meta_payload())
        await self._start_playback()

    async def _play_next(self, s: _Sock, data: Any = None) -> None:
        if not s.joined or not self.may(self._rank_of(s), "playlistjump"):
            return
        await self._skip()

    async def _skip(self) -> None:
        """src/channel/playlist.js _playNext."""
        current = self.pl.current
        if current is None:
            return
        nxt = self.pl.next_of(current)
        if current.temp:
            await self._delete(current)
        elif nxt is not None:
            self.pl.current = nxt
            await self._start_playback()

    async def _set_temp(self, s: _Sock, data: Any) -> None:
        if not s.joined or not isinstance(data, dict) or \
                not self.may(self._rank_of(s), "settemp"):
            return
        item = self.pl.find(data.get("uid"))
        if item is not None:
            item.temp = bool(data.get("temp"))
            await self._broadcast("setTemp", data)

    async def _voteskip(self, s: _Sock, data: Any = None) -> None:
        if not s.joined or not self.may(self._rank_of(s), "voteskip") or not self.pl.items:
            return
        if s.ip in self.voteskips:
            return
        self.voteskips.add(s.ip)
        eligible = sum(1 for u in self._members.values() if u.name.lower() not in self.afk
                       and self.may(u.rank, "voteskip"))
        need = max(1, math.ceil(eligible * 0.5))
        if len(self.voteskips) >= need:
            await self._skip()
            return
        await self._broadcast("voteskip", {"count": len(self.voteskips),
                                           "need": math.ceil(eligible * 0.5)},
                              min_rank=self.permissions["viewvoteskip"])

    async def _cmd_kick(self, user: _User, msg: str, s: _Sock | None) -> None:
        """src/channel/kickban.js handleCmdKick (the chat command ``/kick name reason``)."""
        if not self.may(user.rank, "kick"):
            return
        args = msg.split(" ")[1:]
        if not args or not args[0].strip():
            if s is not None:
                await self._emit(s.sid, "errorMsg", {"msg": KICK_NO_TARGET})
            return
        target = self._members.get(args[0].lower())
        if target is None:
            return
        if target.rank >= user.rank:
            if s is not None:
                await self._emit(s.sid, "errorMsg",
                                 {"msg": f"You do not have permission to kick {target.name}"})
            return
        await self.kick(target.name, " ".join(args[1:]))
        await self._notice(f"{user.name} kicked {target.name}")

    async def _mod_command(self, cmd: str, user: _User, msg: str, s: _Sock | None) -> None:
        if cmd == "kick":
            await self._cmd_kick(user, msg, s)
        elif cmd in ("mute", "unmute"):
            await self._cmd_mute(user, msg, s, cmd == "mute")

    async def _cmd_mute(self, user: _User, msg: str, s: _Sock | None, muted: bool) -> None:
        """src/channel/chat.js handleCmdMute / handleCmdUnmute."""
        if not self.may(user.rank, "mute"):
            return
        args = msg.split(" ")[1:]
        verb = "mute" if muted else "unmute"
        name = args[0].lower() if args else ""
        target = self._members.get(name)
        error = f"/{verb} requires a target name" if not args else None
        if error is None and muted and target is None:
            error = f"/mute target {name} not present in channel."
        elif error is None and muted and target is not None and target.rank >= user.rank:
            error = f"/mute failed - {target.name} has equal or higher rank than you."
        elif error is None and not muted and name == user.name.lower():
            error = "You are not allowed to unmute yourself"
        elif error is None and not muted and name not in self.muted:
            error = f"{name} is not muted."
        if error is not None:
            if s is not None:
                await self._emit(s.sid, "errorMsg", {"msg": error})
            return
        (self.muted.add if muted else self.muted.discard)(name)
        if muted:
            await self._send_meta(name)
        await self._notice(f"{user.name} {verb}d {target.name if target else name}",
                           min_rank=self.permissions["mute"])
        if not muted:
            await self._send_meta(name)

    def playlist_handlers(self) -> dict[str, Any]:
        return {"queue": self._queue, "delete": self._delete_event, "moveMedia": self._move_media,
                "jumpTo": self._jump_to, "playNext": self._play_next, "setTemp": self._set_temp,
                "voteskip": self._voteskip}
