"""A fake CyTube 3.86 server (many channels, see fakes/cytube_server.py) for tests and benchmarks.

Behaviour is copied from tests/data/cytube-transcript.jsonl (docs/cytube/PROTOCOL.md): ``rank -1``
on connect, ``joinChannel`` once per socket with the recorded join burst (chat-buffer replay with
the original ``time`` values), registered and guest ``login`` with the real payloads and
errors, chat through the §6.2 text pipeline, echo to everyone including the sender, server
commands that are never broadcast, the §6.5 flood limiter, ``pm``. Every connection is brand
new: after a reconnect a client must ``joinChannel`` and ``login`` again.

Also modelled (PROTOCOL §2, §3.5, §5, §9): the per-IP connection bucket (5, then one per
10 s; ``X-Forwarded-For`` sets the IP, as with trust-proxies) and the guest-login limit, both
opt-in (``limits=True``) so other tests may connect freely; server bans (``connect_error``) and
channel bans (kick); the channel password (``needPassword``/``channelPassword``); ``setOptions``
for rank >= 2 (antiflood, password, afk_timeout); mutes (``noflood``); ``/afk`` and AFK meta;
``changeMedia`` for what plays now; the channel page's chat ``maxlength``.

The playlist, voteskip and ``/kick`` are in fakes/cytube_playlist.py.

Not modelled: polls, shadow mutes, the auto-AFK timer, playback ending by itself.

Standalone: ``python -m fakes.cytube --port 0 --channel testchan --account roseybot:pw:2``
prints ``READY http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fakes import cytube_filters as cf
from fakes.cytube_base import BANNED, _Sock, _User
from fakes.cytube_playlist import FakeCytubePlaylist
from fakes.cytube_server import CytubeServer

log = logging.getLogger(__name__)

__all__ = ["FakeCytube"]


class FakeCytube(FakeCytubePlaylist):
    """One channel of the fake server; the one built first also owns the server
    (``channel_named`` reaches the others)."""

    def __init__(self, channel: str = "testchan", *, max_length: int = 320,
                 antiflood: bool = False, limits: bool = False,
                 server: CytubeServer | None = None) -> None:
        super().__init__(channel, max_length=max_length, antiflood=antiflood, limits=limits,
                         server=server)
        self._handlers: dict[str, Callable[[_Sock, Any], Coroutine[Any, Any, None]]] = {
            "joinChannel": self._join,
            "login": self._login,
            "chatMsg": self._chat_msg,
            "pm": self._pm_msg,
            "channelPassword": self._channel_password,
            "setOptions": self._set_options,
            **self.playlist_handlers(),
        }

    # ---------------------------------------------------------------- test control API
    async def say_as(self, name: str, msg: str, meta: dict[str, Any] | None = None,
                     channel: str | None = None) -> None:
        chan = self._in(channel)
        await chan._settle()
        await chan._chat(chan._member(name), msg, meta or {}, None)

    async def pm_as(self, name: str, to: str, msg: str, channel: str | None = None) -> None:
        chan = self._in(channel)
        await chan._settle()
        await chan._pm(chan._member(name), to, msg, None)

    # ---------------------------------------------------------------- socket.io
    async def _on_disconnect(self, s: _Sock) -> None:
        if self._socks.pop(s.sid, None) is not None and s.joined:
            self._usercount_changed()
        if s.name is not None:
            user = self._members.get(s.name.lower())
            if user is not None and user.sid == s.sid:
                await self._leave(user)

    async def _on_event(self, event: str, s: _Sock, data: Any) -> None:
        handler = self._handlers.get(event)
        if handler is not None:
            await handler(s, data)

    async def _join(self, s: _Sock, data: Any) -> None:
        if s.join_seen:  # socket.once("joinChannel")
            return
        s.join_seen = True
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not cf.CHANNEL_NAME_RE.match(name):
            await self._emit(s.sid, "errorMsg", {"msg": cf.ERR_INVALID_CHANNEL})
            await self._emit(s.sid, "kick", {"reason": "Invalid channel name"})
            self._socks.pop(s.sid, None)
            await self.sio.disconnect(s.sid)
            return
        pw = data.get("pw") if isinstance(data, dict) else None
        if self.password and pw != self.password and s.rank < 2:
            s.need_password = True  # src/channel/accesscontrol.js
            await self._emit(s.sid, "needPassword", False)
            return
        await self._admit(s)

    async def _channel_password(self, s: _Sock, data: Any) -> None:
        if not s.need_password:
            return
        if data != self.password:
            await self._emit(s.sid, "needPassword", True)
            return
        s.need_password = False
        await self._emit(s.sid, "cancelNeedPassword")
        await self._admit(s)

    async def _set_options(self, s: _Sock, data: Any) -> None:
        if not s.joined or s.rank < 2 or not isinstance(data, dict):
            return
        if "chat_antiflood" in data:
            self.antiflood = bool(data["chat_antiflood"])
        params = data.get("chat_antiflood_params")
        if isinstance(params, dict):  # setOptions caps them and derives the cooldown
            burst = min(float(params.get("burst", 4)), 20)
            sustained = min(float(params.get("sustained", 1)), 10)
            self.antiflood_params = {"burst": burst, "sustained": sustained,
                                     "cooldown": burst / sustained}
        if isinstance(data.get("password"), str):
            self.password = data["password"]
        if isinstance(data.get("afk_timeout"), (int, float)):
            self.afk_timeout = data["afk_timeout"]
        await self._broadcast("channelOpts", self._opts())

    async def _admit(self, s: _Sock) -> None:
        """The join burst (PROTOCOL §3.2), once any channel password is settled."""
        s.joined = True
        if s.name is not None and s.name.lower() in self.banned_names:
            await self._kick_sock(s, BANNED)
            return
        if s.name is not None:  # logged in before joining
            if len(self.server.channels) > 1:  # the login could not evict: the join does
                await self._evict(s.name, s.sid)
            acct = self.accounts.get(s.name.lower())
            if acct is not None and not s.guest:  # this channel's rank of the account
                s.rank = self._channel_rank(s.name, acct[2])
            await self._emit(s.sid, "rank", cf.js_number(s.rank))
            await self._enter(s)
        for event, payload in (
            ("setPermissions", cf.PERMISSIONS), ("setPlaylistLocked", True), ("emoteList", []),
        ):  # fmt: skip
            await self._emit(s.sid, event, payload)
        for msg in list(self.buffer):
            await self._emit(s.sid, "chatMsg", msg)
        await self._emit(s.sid, "drinkCount", 0)
        await self._emit(s.sid, "channelCSSJS", cf.CHANNEL_CSSJS)
        await self._emit(s.sid, "setMotd", "")
        await self._emit(s.sid, "channelOpts", self._opts())
        for _ in range(2 if s.name is not None and not s.guest else 1):
            await self._send_playlist(s.sid)
        if self.media is not None:  # [setCurrent, setCurrent, changeMedia] when playing
            uid = self.pl.current.uid if self.pl.current else 0
            await self._emit(s.sid, "setCurrent", uid)
            await self._emit(s.sid, "setCurrent", uid)
            await self._emit(s.sid, "changeMedia", self.media)
        await self._emit(
            s.sid, "userlist", [self._entry(u, s.rank) for u in self._members.values()]
        )
        self._usercount_changed()  # to everyone, throttled, as channel.js does
        if s.name is not None and not s.guest:
            await self._emit(s.sid, "listPlaylists", [])

    async def _enter(self, s: _Sock) -> None:
        """A logged-in socket joins the channel (login-then-join order)."""
        assert s.name is not None
        user = _User(s.name, s.rank, s.sid, s.guest)
        self._members[s.name.lower()] = user
        if not s.guest:
            await self._broadcast(
                "setUserRank", {"name": s.name, "rank": cf.js_number(s.rank)}, exclude=s.sid
            )
        await self._broadcast("addUser", lambda v: self._entry(user, v.rank), exclude=s.sid)
        await self._notice(f"{s.name} joined (aliases: {s.name})", exclude=s.sid)

    async def _login(self, s: _Sock, data: Any) -> None:
        if s.name is not None or not isinstance(data, dict):
            return  # already logged in: ignored without a reply
        name, pw = data.get("name"), data.get("pw") or ""
        if not isinstance(name, str) or not isinstance(pw, str):
            return
        acct = self.accounts.get(name.lower())
        error = cf.login_error(name, pw, acct[1] if acct else None, name.lower() in self._members)
        if error is None and not pw and self.limits:  # one guest login per IP per 60 s
            last = self.server.guest_logins.get(s.ip)
            if last is not None and time.monotonic() - last < 60:
                error = cf.ERR_GUEST_RATE
            else:
                self.server.guest_logins[s.ip] = time.monotonic()
        if error is not None:
            await self._emit(s.sid, "login", {"success": False, "error": error})
            return
        guest = not pw
        if acct is not None:
            name = acct[0]
        await self._emit(s.sid, "rank", 0 if guest else 1)
        # before a join only the one-channel fake knows where to evict from
        evicted = await self._evict(name, s.sid) if s.joined or len(self.server.channels) == 1 \
            else False
        s.name, s.guest, s.rank = name, guest, 0 if guest else 1
        login = {"success": True, "name": name, **({"guest": True} if guest else {})}
        if not s.joined:
            await self._emit(s.sid, "login", login)
            if acct is not None:
                s.rank = acct[2]  # the channel rank is loaded on join (_admit)
            return
        user = _User(name, s.rank, s.sid, guest)
        if name.lower() in self.banned_names:
            # kickban.js onUserPostJoin: waitFlag(U_LOGGED_IN), then a database lookup, then
            # the kick: the login has already succeeded when the ban's kick arrives.
            await self._emit(s.sid, "login", login)
            await self._kick_sock(s, BANNED)
            return
        self._members[name.lower()] = user
        await self._broadcast("addUser", lambda v: self._entry(user, v.rank), exclude=s.sid)
        await self._emit(s.sid, "login", login)
        if evicted:  # the new socket hears of the old session's leave after its login
            await self._emit(s.sid, "userLeave", {"name": name})
        await self._notice(f"{name} joined (aliases: {name})", exclude=s.sid)
        await self._emit(s.sid, "addUser", self._entry(user, s.rank))
        if acct is None:
            return
        s.rank = user.rank = self._channel_rank(name, acct[2])
        # the channel rank loaded from the DB: rank, a mod userlist when it crosses 2, and
        # the playlist again (recorded in bot-join-then-login and duplicate-login)
        await self._emit(s.sid, "rank", cf.js_number(s.rank))
        await self._broadcast(
            "setUserRank", {"name": name, "rank": cf.js_number(s.rank)}, exclude=s.sid
        )
        if s.rank >= 2:
            await self._emit(
                s.sid, "userlist", [self._entry(u, s.rank) for u in self._members.values()]
            )
        await self._send_playlist(s.sid)
        if self.media is not None:
            await self._emit(s.sid, "setCurrent", self.pl.current.uid if self.pl.current else 0)
        await self._emit(s.sid, "setUserRank", {"name": name, "rank": cf.js_number(s.rank)})

    async def _evict(self, name: str, new_sid: str) -> bool:
        """Duplicate login: the old session is kicked and leaves (PROTOCOL §5)."""
        old = self._members.get(name.lower())
        old_sid = next(
            (x.sid for x in self._socks.values() if x.name and x.name.lower() == name.lower()), None
        )
        if old_sid is not None:
            await self._emit(old_sid, "kick", {"reason": "Duplicate login"})
        if old is not None:
            del self._members[name.lower()]
            for x in list(self._socks.values()):
                if x.joined and x.sid not in (old_sid, new_sid):
                    await self._emit(x.sid, "userLeave", {"name": old.name})
        if old_sid is not None:
            self._socks.pop(old_sid, None)
            await self.sio.disconnect(old_sid)
        return old is not None

    async def _chat_msg(self, s: _Sock, data: Any) -> None:
        if not s.joined or await self._bad_frame(s, "chatMsg", data, "msg"):
            return
        user = self._members.get(s.name.lower()) if s.name else None
        if user is not None:  # anonymous sockets may not chat: dropped silently
            meta = data.get("meta")
            await self._chat(user, data["msg"], meta if isinstance(meta, dict) else {}, s)

    async def _throttled(self, s: _Sock | None, rank: float) -> bool:
        if s is None:
            return False
        now = time.monotonic()
        if s.limiter.throttle(now, **cf.MIN_ANTIFLOOD):
            await self._emit(s.sid, "cooldown", 100)
            return True
        p = self.antiflood_params
        if self.antiflood and rank < 2 and s.af_limiter.throttle(now, **p):
            await self._emit(s.sid, "cooldown", cf.js_number(1000 / p["sustained"]))
            return True
        return False

    async def _chat(self, user: _User, raw: str, meta_in: dict[str, Any], s: _Sock | None) -> None:
        msg = cf.prepare(raw, self.max_length)
        if msg is None:
            return
        if "/afk" not in msg and user.name.lower() in self.afk:
            await self.set_afk(user.name, False)  # chatting clears AFK, before the limiter
        if await self._throttled(s, user.rank):
            return
        if user.name.lower() in self.muted and s is not None:
            await self._emit(s.sid, "noflood", {"action": "chat", "msg": cf.ERR_MUTED})
            return
        cmd = cf.command_of(msg)
        if cmd == "afk":
            self.commands_run.append((user.name, msg))
            await self.set_afk(user.name, user.name.lower() not in self.afk)
            return
        if cmd is not None:
            self.commands_run.append((user.name, msg))
            await self._mod_command(cmd, user, msg, s)  # /kick, /mute, /unmute
            if cmd == "clear" and user.rank >= 2:
                self.buffer.clear()
                await self._broadcast("clearchat", {"clearedBy": user.name})
                await self._notice(f"{user.name} cleared chat.", min_rank=-1)
            return
        meta: dict[str, Any] = {}
        if meta_in.get("modflair") == user.rank and user.rank >= 2:
            meta["modflair"] = meta_in["modflair"]
        if msg.startswith(">"):
            meta["addClass"] = "greentext"
        payload = {
            "username": user.name,
            "msg": cf.filter_message(msg),
            "meta": meta,
            "time": self._now(),
        }
        self.buffer.append(payload)
        self.chat_log.append(payload)
        await self._broadcast("chatMsg", payload)

    async def _pm_msg(self, s: _Sock, data: Any) -> None:
        if not s.joined:
            return
        if s.name is None:
            await self._emit(s.sid, "errorMsg", {"msg": cf.ERR_PM_ANON})
            return
        if await self._bad_frame(s, "pm", data, "to") or await self._bad_frame(
            s, "pm", data, "msg"
        ):
            return
        user = self._members.get(s.name.lower())
        if user is not None:
            await self._pm(user, data["to"], data["msg"], s)

    async def _pm(self, user: _User, to: str, raw: str, s: _Sock | None) -> None:
        error = None
        target = self._members.get(to.lower())
        if not cf.USERNAME_RE.match(to):
            error = f"PM failed: {to} isn't a valid username."
        elif await self._throttled(s, user.rank):
            return
        elif to.lower() == user.name.lower():
            error = cf.ERR_PM_SELF
        elif target is None:
            error = f"PM failed: {to} isn't connected to this channel."
        if error is not None or target is None:
            if s is None:
                raise LookupError(error)
            await self._emit(s.sid, "errorMsg", {"msg": error})
            return
        msg = cf.prepare(raw, self.max_length)
        if msg is None:
            return
        meta = {"addClass": "greentext"} if msg.startswith(">") else {}
        payload = {
            "username": user.name, "msg": cf.filter_message(msg), "meta": meta,
            "time": self._now(), "to": target.name,
        }  # fmt: skip
        self.pm_log.append(payload)
        for sid in (target.sid, user.sid):
            if sid is not None:
                await self._emit(sid, "pm", payload)


async def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--channel", default="testchan")
    ap.add_argument("--max-length", type=int, default=320)
    ap.add_argument("--antiflood", action="store_true")
    ap.add_argument("--account", action="append", default=[], help="name:pw[:rank]")
    ap.add_argument("--virtual-user", action="append", default=[], help="name[:rank]")
    args = ap.parse_args()
    fake = FakeCytube(args.channel, max_length=args.max_length, antiflood=args.antiflood)
    for spec in args.account:
        name, pw, *rank = spec.split(":")
        fake.add_account(name, pw, float(rank[0]) if rank else 1)
    for spec in args.virtual_user:
        name, *rank = spec.split(":")
        fake.add_virtual_user(name, float(rank[0]) if rank else 1)
    await fake.start(args.port)
    print(f"READY {fake.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await fake.stop()


if __name__ == "__main__":
    asyncio.run(_main())
