"""One channel's connection: its CyTube socket, its router link and its outbound governor.

The I/O shell around the pure parts: ``Session`` (frames -> router messages and emits),
``Governor`` (pacing, splitting, echo FIFO) and ``ReconnectPolicy`` (when to connect, when
to give up). ``site.py`` finds the socket server, ``transport.py`` is the socket.io
connection, ``counts.py`` turns what happened into metrics. ``service.py`` runs one of these
per channel in the one conn process. Triggers, LLM calls and SQL live elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from rosey import ipc, metrics
from rosey.config import Config
from rosey.conn import attempts, refusals, site, transport
from rosey.conn.backoff import Cause, ReconnectPolicy, classify_connect_error
from rosey.conn.counts import ChannelMetrics
from rosey.conn.governor import Governor
from rosey.conn.ledger import Ledger, accept
from rosey.conn.session import Emit, Session
from rosey.errors import RoseyError
from rosey.lifecycle import survive
from rosey.protocol import ACTIONS, Delivered, Message, Say, encode

log = logging.getLogger("rosey.conn")

FATAL_REMINDER = 60.0  # seconds between repeats of the "stopped retrying" line


class FatalConnError(RoseyError):
    """Retrying cannot help (ban, bad password, unknown channel): stay up, idle, alerting."""

    def __init__(self, reason: refusals.FatalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class ChannelClient:
    def __init__(self, cfg: Config, ctx: zmq.asyncio.Context,
                 clock: Callable[[], float] = time.time,
                 policy: ReconnectPolicy | None = None,
                 fatal_reminder: float = FATAL_REMINDER) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.fatal_reminder = fatal_reminder
        self.clock = clock
        self.channel = cfg.channel
        self.governor = Governor(limit=cfg.conn.message_length or site.message_limit(None),
                                 max_parts=cfg.conn.max_parts, echo_timeout=cfg.conn.echo_timeout)
        self.session = Session(channel=cfg.channel, name=cfg.bot_name, password=cfg.password,
                               channel_password=cfg.conn.channel_password,
                               keepalive_afk=cfg.conn.keepalive_afk, governor=self.governor,
                               clock=clock)
        self.state_path = attempts.path_for(cfg.paths.run_dir, cfg.channel)
        self._saved_attempts = policy is None  # read in run(), off the loop
        self.policy = policy or ReconnectPolicy(
            min_delay=cfg.conn.reconnect_min, max_delay=cfg.conn.reconnect_max,
            kick_delay=cfg.conn.kick_backoff, guest=not cfg.password)
        self.metrics = ChannelMetrics(cfg.channel)
        self.io: transport.Socket | None = None
        self._wake = asyncio.Event()
        # What this channel's conns posted, across restarts (see ledger.py).
        self.ledger = Ledger(Path(cfg.paths.run_dir) / f"conn-{cfg.channel}.posted")
        self._later: set[asyncio.Task[None]] = set()

    @property
    def joined(self) -> bool:
        return self.session.joined

    # ---- router link ----------------------------------------------------------------------

    async def run(self) -> None:
        # One identity per session: a restarted session (rosey apply, a crash) reusing the
        # last one would meet the old socket still lingering at the router, and ROUTER_HANDOVER
        # then drops the new socket's first messages (~10 % of restarts under load, measured).
        # The router learns the identity from the session's ConnState, sent first.
        self.sock = ipc.dealer_socket(self.ctx, ipc.endpoint(self.cfg.paths.run_dir, "conn"),
                                      f"conn:{self.channel}:{secrets.token_hex(4)}")
        self.ledger.load()
        if self._saved_attempts:  # a restarted session keeps its backoff (attempts.py)
            self.policy.log = await asyncio.to_thread(attempts.load, self.state_path)
        self.metrics.fatal(None)
        self.session.state("connecting")
        await self._flush()
        tasks = [asyncio.create_task(self._router_loop()),
                 asyncio.create_task(self._link_loop()),
                 asyncio.create_task(self._send_loop()),
                 asyncio.create_task(self._connection_loop())]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in [*tasks, *self._later]:
                task.cancel()
            self.metrics.connected.set(0)
            if self.io is not None:
                await self.io.close()
            self.sock.close(linger=200)
            self.ledger.close()

    async def leave(self, bound: float, why: str) -> None:
        """Let the governor send what it holds (at most ``bound`` s), then tell the router
        this session is going (``why``); the caller cancels ``run``."""
        deadline = asyncio.get_running_loop().time() + bound
        while self.governor.depth() and asyncio.get_running_loop().time() < deadline:
            if not self.joined or self.session.fatal:
                break  # nothing can leave: do not wait for it
            await asyncio.sleep(0.05)
        self.session.state("disconnected", why)
        await self._flush()

    async def to_router(self, msg: Message) -> None:
        data = encode(msg)
        # The plain send: the asyncio wrapper costs a future and a loop pass per frame, which
        # is most of conn's intake cost at chat rates (bench/conn_intake.py). A send may
        # consume the socket's edge-triggered FD wakeup that the pending recv of the router
        # loop waits for, so re-arm it exactly as pyzmq's own send does.
        rearm = getattr(self.sock, "_schedule_remaining_events", None)
        if rearm is None:
            await self.sock.send(data)
            return
        try:
            zmq.Socket.send(self.sock, data, zmq.NOBLOCK)
        except zmq.Again:  # router away and the queue at its HWM: wait like a DEALER does
            await self.sock.send(data)
            return
        rearm()

    async def _link_loop(self) -> None:
        """Each time the DEALER (re)connects, the router may be a new process that knows
        nothing of the channel: announce our state and the user list (it also re-offers
        its unacknowledged replies at once on a ConnState)."""
        monitor = self.sock.get_monitor_socket(zmq.EVENT_CONNECTED)

        async def step() -> None:
            frames = await monitor.recv_multipart()
            if parse_monitor_message(frames)["event"] == zmq.EVENT_CONNECTED:
                self.session.announce()
                await self._flush()

        try:
            await survive(f"conn {self.channel} router monitor", log, step)
        finally:
            monitor.close(linger=0)

    async def _router_loop(self) -> None:
        async def step() -> None:
            msg = ipc.decode_or_count(await self.sock.recv(), "conn", log)
            if isinstance(msg, (Say, *ACTIONS)) and msg.channel != self.channel:
                await self._misrouted(msg)
            elif isinstance(msg, Say):
                await self.accept_say(msg)
            elif isinstance(msg, ACTIONS):  # typed moderator actions (conn/actions.py)
                self.session.act(msg)
                await self._flush()

        await survive(f"conn {self.channel} router link", log, step)

    async def _misrouted(self, msg: Message) -> None:
        """Sent to this channel's socket for another channel: never posted here. A Say is
        refused (the router stops re-offering it); an action times out at the router."""
        channel = getattr(msg, "channel", "")
        log.warning("%s: dropped a %s meant for channel %r", self.channel, type(msg).__name__,
                    channel)
        if isinstance(msg, Say):
            await self.to_router(Delivered(channel=channel, say_id=msg.id, ok=False,
                                           seq=msg.seq, reason="wrong channel"))

    async def accept_say(self, say: Say) -> None:
        """An offer of one reply segment; the router re-offers until we acknowledge it."""
        log.debug("say %s/%d received in %s", say.id, say.seq, self.channel)
        done, parts = accept(self.governor, self.ledger, say, self.clock())
        if done is not None:  # finished here or by an earlier conn: acknowledge again
            self._wake.set()  # (the re-offer may have ended a stream: its held text goes)
            await self.to_router(Delivered(channel=self.channel, say_id=say.id, ok=done,
                                           seq=say.seq, reason="" if done else "given up"))
            return
        metrics.SPLITS.inc(parts)
        metrics.GOVERNOR_DEPTH.labels(self.channel).set(self.governor.depth())
        self._wake.set()

    async def _flush(self) -> None:
        """Carry out what the session asked for: router messages, emits, lifecycle news."""
        out, emits, signals = self.session.take()
        if self.session.notes:
            self.metrics.notes(self.session.notes)
            self.session.notes = []
        for part in self.governor.confirmed:
            self.ledger.confirmed(part)
        self.governor.confirmed.clear()
        for msg in out:
            if isinstance(msg, Delivered):
                self.ledger.finished((msg.say_id, msg.seq), msg.ok)
            await self.to_router(msg)
        for emit in emits:
            if emit.delay > 0:
                task = asyncio.create_task(self._emit_later(emit, self.io))
                self._later.add(task)
                task.add_done_callback(self._later.discard)
            else:
                await self._emit(emit.event, emit.data)
        for signal in signals:
            await self._on_signal(signal)
        if self.session.wake:  # not on every frame: a wakeup costs the send loop a pass
            self.session.wake = False
            self._wake.set()

    async def _on_signal(self, signal: str) -> None:
        if signal == "joined":
            self.metrics.connected.set(1)
            self.policy.record_joined()
            await asyncio.to_thread(attempts.save, self.state_path, self.policy.log)
        elif signal == "kicked":
            self.policy.record_kick()
        elif signal == "guest_login":
            self.policy.record_guest_login()
        elif signal in ("muted", "unmuted"):
            self.metrics.muted.set(1 if signal == "muted" else 0)
        elif signal == "fatal" and self.io is not None:
            self.io.closed.set()

    # ---- outbound -------------------------------------------------------------------------

    async def _emit(self, event: str, data: Any) -> bool:
        """False when there is no live socket to emit on (nothing was sent)."""
        return self.io is not None and await self.io.emit(event, data)

    async def _emit_later(self, emit: Emit, io: transport.Socket | None) -> None:
        await asyncio.sleep(emit.delay)
        if io is self.io:  # the same socket: a new one logs in by itself
            if emit.event == "login" and self.session.guest:
                self.policy.record_guest_login()
            await self._emit(emit.event, emit.data)

    async def _send_loop(self) -> None:
        await survive(f"conn {self.channel} send loop", log, self._send_step)

    async def _send_step(self) -> None:
        """One pass: expire, send what the limiter allows, flush, then sleep until woken."""
        self._wake.clear()  # before looking, so a Say arriving meanwhile is not missed
        now = self.clock()
        for outcome in self.governor.expire(now):
            self.session.finish(outcome)
        self.session.out.extend(self.session.actions.expire(now))
        delay = 1.0
        if self.joined and self.io is not None and not self.session.fatal:
            part = self.governor.next_part(now)
            while part is not None:
                if part.echo:  # write-ahead: a crash after the emit must find it here
                    self.ledger.emitting(part, self.governor.parts_of(part.key), now,
                                         self.governor.riders_of(part.key))
                if not await self._emit_part(part.text, part.pm_to):
                    # The socket went away under us: back to the queue, in order (this
                    # part never left; the ones before it may have).
                    self.governor.unsent(part)
                    self.governor.on_disconnect()
                    break
                part = self.governor.next_part(now)
            delay = min(1.0, self.governor.delay(now))
        await self._flush()
        metrics.GOVERNOR_DEPTH.labels(self.channel).set(self.governor.depth())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.005))

    async def _emit_part(self, text: str, pm_to: str) -> bool:
        log.debug("emit part (%d chars)", len(text))
        if pm_to:
            sent = await self._emit("pm", {"to": pm_to, "msg": text, "meta": {}})
        else:
            sent = await self._emit("chatMsg", {"msg": text, "meta": {}})
        if sent:
            metrics.SENT.labels("pm" if pm_to else "chat").inc()
        return sent

    # ---- connection lifecycle -------------------------------------------------------------

    async def _connection_loop(self) -> None:
        cause: Cause = "start"
        while True:
            delay = self.policy.next_delay(cause)
            metrics.BACKOFF.labels(self.channel).set(delay)
            if delay > 0:
                log.info("%s: connecting in %.1f s (%s)", self.channel, delay, cause)
                await asyncio.sleep(delay)
            self.policy.record_attempt()
            await asyncio.to_thread(attempts.save, self.state_path, self.policy.log)
            try:
                cause = await self._connect_once()
            except FatalConnError as exc:
                await self._idle_fatal(exc)
            except Exception as exc:
                log.warning("%s: connection failed: %s: %s", self.channel,
                            type(exc).__name__, exc)
                cause = "rate_limited" if "Rate limit" in str(exc) else "failure"
            self.metrics.connected.set(0)
            metrics.RECONNECTS.labels(cause).inc()
            # Until the next socket has joined, the send loop must hold every part: what
            # it emitted on the dead socket never reached the server.
            self.io = None
            self.session.socket_closed()
            self.governor.on_disconnect()
            for task in list(self._later):
                task.cancel()
            self.session.state("disconnected", self.session.kick_reason)
            await self._flush()

    async def _idle_fatal(self, exc: FatalConnError) -> None:
        """Stay up and idle (an exit would restart us into the server's limits and take away
        the /metrics that status and the alert read), repeating the fix every
        ``fatal_reminder`` s so a foreground ``rosey run`` cannot scroll it away.  Only this
        channel stops: ``rosey apply`` with a fixed config restarts it."""
        self.metrics.fatal(exc.reason)
        metrics.CONNECT_ATTEMPTS.labels("fatal").inc()
        names = refusals.Names(name=self.session.name, domain=self.cfg.domain,
                               channel=self.channel)
        line = refusals.stopped_line(exc.reason, exc.detail, names)
        log.error("%s", line)
        self.session.state("fatal", line)
        await self._flush()
        if self.io is not None:
            await self.io.close()
        while True:
            await asyncio.sleep(self.fatal_reminder)
            log.error("%s", line)  # the same words: grep finds every repeat

    async def _connect_once(self) -> Cause:
        read_page = not self.cfg.conn.message_length
        try:
            where = await site.lookup(self.cfg.domain, self.channel,
                                      self.cfg.conn.connect_timeout, read_page)
        except site.SiteError as exc:
            if exc.kind == "no_channel":
                raise FatalConnError("no_channel", exc.detail) from exc
            raise ConnectionError(exc.detail) from exc
        if read_page:
            self._set_limit(where.maxlength)
        metrics.MESSAGE_LENGTH.labels(self.channel).set(self.governor.limit)
        io = self.io = transport.Socket(self.on_frame, self._on_connect,
                                        self.cfg.conn.log_frames)
        try:
            await io.connect(where.server, self.cfg.conn.connect_timeout)
        except transport.Refused as exc:
            metrics.CONNECT_ATTEMPTS.labels(classify_connect_error(exc.text)).inc()
            if refusals.is_fatal(exc.reason):
                raise FatalConnError(exc.reason, f"refused by the server: {exc.text}") from exc
            raise ConnectionError(f"connect refused: {exc.text}") from exc
        metrics.CONNECT_ATTEMPTS.labels("connected").inc()
        await io.closed.wait()
        if self.session.fatal_reason is not None:
            raise FatalConnError(self.session.fatal_reason, self.session.fatal)
        await io.close()
        kick = self.session.kick_verdict
        log.warning("%s: disconnected from %s%s", self.channel, where.server,
                    f" (kicked: {self.session.kick_reason})" if kick else "")
        if kick in ("duplicate", "kick"):
            return "kick"
        if kick == "rate_limited":
            return "rate_limited"
        return "disconnect" if self.policy.log.failures == 0 else "failure"

    def _set_limit(self, found: int | None) -> None:
        limit = site.message_limit(found)
        if limit != self.governor.limit:
            log.info("%s: chat messages are split at %d UTF-16 units (%s)", self.channel, limit,
                     "channel page" if found else "default")
        self.governor.set_limit(limit)

    async def _on_connect(self) -> None:
        log.info("connected; joining %s as %s", self.channel, self.session.name)
        for emit in self.session.start_socket():
            await self._emit(emit.event, emit.data)
        await self._flush()

    # ---- inbound --------------------------------------------------------------------------

    async def on_frame(self, event: str, data: Any = None) -> None:
        if self.cfg.conn.log_frames:
            log.info("frame in %s %s", event, transport.redact(event, data))
        self.metrics.frame(event, self.clock())
        self.session.on_frame(event, data)
        await self._flush()
