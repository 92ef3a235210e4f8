"""One channel's CyTube dialogue: frames in, router messages and socket emits out. Pure.

No sockets here (``client.py`` owns them; ``rosey doctor`` drives the same dialogue over its
own): every frame goes through ``on_frame``, which appends what the I/O layer must do to
``out`` (messages for the router), ``emits`` (frames for the server, possibly delayed),
``signals`` (lifecycle news for the connection loop) and ``notes`` (what happened, for the
I/O layer to count: no metric is touched here). This module owns joining, logging in, the
refusals and the delivery feedback; who is in the channel is ``roster.py``'s. That keeps the
whole dialogue testable with recorded frames and a virtual clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from rosey.conn import actions as act
from rosey.conn import events as ev
from rosey.conn import frames as fr
from rosey.conn import ranks, refusals, roster
from rosey.conn.backoff import Verdict, classify_kick, classify_login_error
from rosey.conn.governor import SERVER_DEFAULT, Governor
from rosey.conn.segments import Outcome
from rosey.protocol import (
    PRIORITY_OTHER,
    Action,
    Chat,
    ConnState,
    ConnStateName,
    Delivered,
    MediaChanged,
    Message,
    Pm,
    User,
    UserList,
)

log = logging.getLogger("rosey.conn")

Signal = Literal["joined", "fatal", "kicked", "guest_login", "muted", "unmuted"]
# What happened, for client.py to count: (kind, label, amount).
NoteKind = Literal["frame_error", "unknown_event", "replay_dropped", "keepalive", "kick",
                   "server_dropped", "resent", "spam_filtered", "say", "expired_parts",
                   "governor_wait"]
Note = tuple[NoteKind, str, float]
SPAM_REASONS = frozenset({"NEW_USER_CHAT", "NEW_USER_CHAT_LINK"})
KEEPALIVE = "/afk"
KEEPALIVE_TTL = 60.0


@dataclass(slots=True)
class Emit:
    event: str
    data: Any
    delay: float = 0.0


class Session:
    def __init__(self, *, channel: str, name: str, password: str = "",
                 channel_password: str = "", keepalive_afk: bool = False,
                 governor: Governor | None = None,
                 clock: Callable[[], float]) -> None:
        self.channel, self.name, self.password = channel, name, password
        self.channel_password = channel_password
        self.keepalive_afk = keepalive_afk
        self.governor = governor or Governor()
        self.clock = clock
        self.replay = ev.JoinReplayFilter()
        self.out: list[Message] = []
        self.emits: list[Emit] = []
        self.signals: list[Signal] = []
        self.notes: list[Note] = []
        self.rank = -1.0
        self.rank_said: float | None = None  # the rank the log last named (None: not yet)
        self.antiflood = False
        self.antiflood_params: tuple[float, float, float | None] = (4.0, 1.0, 4.0)
        self.afk_timeout = 600.0
        self.logged_in = self.userlist_seen = False
        self.afk = False
        self.fatal = ""  # why retrying cannot help (what the server said)
        self.fatal_reason: refusals.FatalReason | None = None
        self.login_error = ""  # the last refused login's error (a retry may follow)
        self.kick_reason = ""
        self.kick_verdict: Verdict | None = None
        self.wake = False  # the governor's state changed: the send loop should look again
        self.actions = act.ActionTracker(channel)  # moderator actions awaiting the server
        # Who is in the channel now, so a restarted router can be told (``announce``).
        self.roster: dict[str, User] = {}

    @property
    def joined(self) -> bool:
        return self.logged_in and self.userlist_seen

    @property
    def guest(self) -> bool:
        return not self.password

    # ---- socket lifecycle -----------------------------------------------------------------

    def start_socket(self) -> list[Emit]:
        """A brand-new socket: the server forgot us, so join and log in again (PROTOCOL §9)."""
        return [self.join(), self.login()]

    def join(self) -> Emit:
        """The first frame on a new socket (``rosey doctor`` sends the login after looking
        at the userlist, so as not to kick a running bot)."""
        self.logged_in = self.userlist_seen = self.afk = False
        self.kick_reason, self.kick_verdict, self.login_error = "", None, ""
        self.rank, self.rank_said = -1.0, None
        self.replay.on_join_sent()
        self.governor.new_join()
        join: dict[str, Any] = {"name": self.channel}
        if self.channel_password:
            join["pw"] = self.channel_password
        return Emit("joinChannel", join)

    def login(self, delay: float = 0.0) -> Emit:
        if self.guest:
            self.signals.append("guest_login")
            return Emit("login", {"name": self.name}, delay)
        return Emit("login", {"name": self.name, "pw": self.password}, delay)

    def socket_closed(self) -> None:
        """The socket is gone: nothing may be sent until a new one has joined again."""
        self.logged_in = self.userlist_seen = False
        self.out.extend(self.actions.fail_all("disconnected from the channel"))

    def state(self, state: ConnStateName, detail: str = "") -> None:
        self.out.append(ConnState(channel=self.channel, state=state, bot_name=self.name,
                                  bot_rank=self.rank, detail=detail))

    def announce(self) -> None:
        """Tell a (re)connected router we are in the channel, and who is: it may be a new
        one that knows nothing.  (Not joined: it hears "joined" when we are.)"""
        if self.joined:
            self.out.append(UserList(channel=self.channel, users=list(self.roster.values())))
            self.out.extend(self.actions.replay())  # playlist, permissions, now playing
            self.state("joined")

    def note(self, kind: NoteKind, label: str = "", amount: float = 1.0) -> None:
        self.notes.append((kind, label, amount))

    def take(self) -> tuple[list[Message], list[Emit], list[Signal]]:
        self.wake = self.wake or bool(self.signals)
        out, emits, signals = self.out, self.emits, self.signals
        self.out, self.emits, self.signals = [], [], []
        return out, emits, signals

    def _fatal(self, reason: refusals.FatalReason, detail: str) -> None:
        if not self.fatal:
            self.fatal, self.fatal_reason = detail, reason
            self.signals.append("fatal")

    # ---- inbound --------------------------------------------------------------------------

    def on_frame(self, event: str, data: Any = None) -> None:
        """Handle one server frame; a malformed one is counted once and dropped."""
        try:
            frame = ev.parse_frame(event, data)
        except ev.FrameError as exc:
            known = event in ev.KNOWN_EVENTS
            self.note("frame_error", event if known else "other")
            log.warning("dropped malformed %s frame: %s", event if known else "unknown", exc)
            return
        handler = _HANDLERS.get(type(frame))
        if handler is not None:
            handler(self, frame)
        elif isinstance(frame, fr.UnknownFrame):
            self.note("unknown_event")
            log.debug("unknown event %r", frame.event[:64])
        if self.actions.pending:  # after the state news, so the router reads them first
            self.out.extend(self.actions.observe(frame, self.name))

    def act(self, action: Action) -> None:
        """A typed moderator action from the router: its one frame, or why it was not sent."""
        now = self.clock()
        event, data, failure = self.actions.start(action, now, self.joined)
        if failure is not None:
            self.out.append(failure)
        elif event == "chatMsg":  # /kick, /mute: chat commands, paced with chat by the governor
            self.governor.add_command(data, now + self.actions.timeout, PRIORITY_OTHER)
            self.wake = True
        elif event:
            self.emits.append(Emit(event, data))

    def is_me(self, name: str) -> bool:
        return name.lower() == self.name.lower()

    def finish(self, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        self.wake = True
        self.note("say", "delivered" if outcome.ok else outcome.reason)
        if outcome.reason == "expired":
            self.note("expired_parts", "", outcome.unsent)
        if outcome.ok and outcome.received_at is not None:
            self.note("governor_wait", "", max(0.0, self.clock() - outcome.received_at))
        self.out.append(Delivered(channel=self.channel, say_id=outcome.say_id, ok=outcome.ok,
                                  parts=outcome.parts, reason=outcome.reason, seq=outcome.seq))

    def _chat(self, f: fr.ChatFrame) -> None:
        if self.replay.is_replay(f.time):
            self.note("replay_dropped")
            if self.is_me(f.username):  # sent just before a disconnect after all?
                self.finish(self.governor.on_replayed_echo(f.text, f.time / 1000.0))
        elif self.is_me(f.username):
            self._self_active()
            self.finish(self.governor.on_echo(private=False))
        elif not f.shadow and not f.is_server_notice:
            self.out.append(Chat(channel=self.channel, username=f.username, text=f.text,
                                 time=f.time, received_at=self.clock()))

    def _pm(self, f: fr.PmFrame) -> None:
        if self.is_me(f.username):
            self.finish(self.governor.on_echo(private=True))
        else:
            self.out.append(Pm(channel=self.channel, username=f.username, text=f.text,
                               time=f.time, received_at=self.clock()))

    def own_meta(self, afk: bool, muted: bool | None) -> None:
        """The bot's own AFK and mute flags, as the server sees them."""
        if muted is not None:
            self.set_muted(muted)
        if afk and not self.afk and self.keepalive_afk and self.joined:
            # The server's auto-AFK after afk_timeout s of silence: toggle it back with the
            # /afk command, which is never broadcast as a chat line.
            self.note("keepalive")
            self.wake = True
            self.governor.add_command(KEEPALIVE, self.clock() + KEEPALIVE_TTL)
        elif not afk:
            self.governor.cancel_commands(KEEPALIVE)
        self.afk = afk

    def _self_active(self) -> None:
        """Any chat line of ours (not /afk) clears AFK on the server: drop a stale /afk."""
        self.afk = False
        self.governor.cancel_commands(KEEPALIVE)

    def set_muted(self, muted: bool) -> None:
        if muted != self.governor.muted:
            self.governor.muted = muted
            self.signals.append("muted" if muted else "unmuted")
            log.warning("the channel %s the bot", "muted" if muted else "unmuted")

    def _rank(self, f: fr.RankFrame) -> None:
        self.rank = f.rank
        self._update_pace()
        if self.joined:
            self._say_rank()

    def _say_rank(self) -> None:
        """Log our rank once it is known, and again whenever it changes."""
        if self.rank != self.rank_said:
            self.rank_said = self.rank
            log.info("rank of %s in %s: %s", self.name, self.channel, ranks.label(self.rank))

    def _on_login(self, f: fr.LoginFrame) -> None:
        if f.success:
            self.name = f.name or self.name
            self.set_joined(login=True)
            return
        self.login_error = f.error
        reason = refusals.login_reason(f.error)
        if refusals.is_fatal(reason):  # conn logs it with the fix ("stopped retrying")
            self._fatal(reason, f"login as {self.name!r} refused: {f.error}")
            return
        _verdict, wait = classify_login_error(f.error)
        log.warning("login as %s refused (%s); retrying in %.0f s", self.name, f.error, wait)
        self.emits.append(self.login(wait))

    def set_joined(self, login: bool = False, userlist: bool = False) -> None:
        was = self.joined
        self.logged_in = self.logged_in or login
        self.userlist_seen = self.userlist_seen or userlist
        if self.joined and not was:
            if self.guest:  # a guest's rank is final at its login (PROTOCOL §3.3)
                log.info("joined %s as %s (guest)", self.channel, self.name)
                self._say_rank()
            else:  # the channel rank is loaded after the login: `rank N` follows (§3.3)
                log.info("joined %s as %s; its channel rank follows", self.channel, self.name)
                self.rank_said = None
            self.state("joined")
            self.signals.append("joined")

    def _kick(self, f: fr.KickFrame) -> None:
        self.kick_reason = f.reason or "kicked"
        self.kick_verdict = classify_kick(f.reason)
        self.note("kick", self.kick_verdict)
        fatal = refusals.kick_reason(f.reason)
        if fatal is not None:
            self._fatal(fatal, f"kicked: {self.kick_reason}")
        else:
            log.warning("kicked: %s", self.kick_reason)
            self.signals.append("kicked")

    def _cooldown(self, f: fr.CooldownFrame) -> None:
        self.note("server_dropped", "cooldown")
        self.wake = True
        if self.governor.on_cooldown(self.clock(), f.ms) is not None:
            self.note("resent")

    def _error(self, f: fr.ErrorMsgFrame) -> None:
        log.warning("server error: %s", f.msg)
        msg = f.msg
        if msg.startswith("PM failed") or "PM yourself" in msg or "to send PMs" in msg \
                or "message pm:" in msg:
            self.finish(self.governor.on_error(True, "pm failed"))
        elif "message chatMsg:" in msg:
            self.finish(self.governor.on_error(False, "rejected"))

    def _noflood(self, f: fr.NoFloodFrame) -> None:
        self.note("server_dropped", "noflood")
        self.set_muted(True)
        self.finish(self.governor.on_error(False, "muted"))

    def _spam(self, f: fr.SpamFilteredFrame) -> None:
        reason = f.reason if f.reason in SPAM_REASONS else "other"
        self.note("server_dropped", "spamFiltered")
        self.note("spam_filtered", reason)
        log.warning("the server's spam filter refused a message: %s", f.reason)
        self.finish(self.governor.on_error(False, "spam filtered"))

    def _need_password(self, f: fr.NeedPasswordFrame) -> None:
        if f.wrong:
            self._fatal("channel_password", "the channel password was refused")
        elif not self.channel_password:
            self._fatal("channel_password", "the channel needs a password")
        else:
            self.emits.append(Emit("channelPassword", self.channel_password))

    def _opts(self, f: fr.ChannelOptsFrame) -> None:
        self.antiflood = f.chat_antiflood
        self.afk_timeout = f.afk_timeout
        self.antiflood_params = (f.antiflood_burst, f.antiflood_sustained, f.antiflood_cooldown)
        self._update_pace()

    def _update_pace(self) -> None:
        if self.antiflood and self.rank < 2:
            # setOptions caps the channel's params at the server minimum (20, 10/s).
            burst, sustained, cooldown = self.antiflood_params
            sustained = min(max(sustained, 0.01), 10.0)
            self.governor.set_pace(max(1, int(min(burst, 20))), sustained, cooldown)
        else:
            self.governor.set_pace(*SERVER_DEFAULT)


_HANDLERS: dict[type, Callable[[Session, Any], None]] = {
    fr.ChatFrame: Session._chat,
    fr.PmFrame: Session._pm,
    fr.ChangeMediaFrame: lambda s, f: s.out.append(s.actions.remember_media(MediaChanged(
        channel=s.channel, title=f.title, id=f.id, type=f.type, seconds=f.seconds))),
    fr.RankFrame: Session._rank,
    fr.LoginFrame: Session._on_login,
    fr.KickFrame: Session._kick,
    fr.CooldownFrame: Session._cooldown,
    fr.ErrorMsgFrame: Session._error,
    fr.NoFloodFrame: Session._noflood,
    fr.SpamFilteredFrame: Session._spam,
    fr.NeedPasswordFrame: Session._need_password,
    fr.CancelNeedPasswordFrame: lambda s, f: log.info("channel password accepted"),
    fr.ChannelOptsFrame: Session._opts,
    fr.ChannelRankFailFrame: lambda s, f: log.warning("channel rank change failed: %s", f.msg),
}
_HANDLERS.update(roster.HANDLERS)
_HANDLERS.update(act.FORWARDERS)
