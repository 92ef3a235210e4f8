"""The conn process: one socket.io connection to CyTube and the outbound governor.

The I/O shell around three pure parts: ``Session`` (frames -> router messages and emits),
``Governor`` (pacing, splitting, echo FIFO) and ``ReconnectPolicy`` (when to connect, when
to give up). Triggers, LLM calls and SQL live elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import socketio
import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from rosey import ipc, metrics
from rosey.config import Config, channel_configs
from rosey.conn import refusals
from rosey.conn.backoff import Cause, ReconnectPolicy, classify_connect_error
from rosey.conn.governor import Governor
from rosey.conn.ledger import Ledger, accept
from rosey.conn.session import Emit, Session
from rosey.errors import RoseyError
from rosey.lifecycle import run_until_signalled, survive
from rosey.protocol import ACTIONS, Delivered, Message, Say, encode

log = logging.getLogger("rosey.conn")

DEFAULT_MESSAGE_LENGTH = 320
FATAL_REMINDER = 60.0  # seconds between repeats of the "stopped retrying" line
_CHATLINE = re.compile(r"<input\b[^>]*\bid=[\"']chatline[\"'][^>]*>", re.IGNORECASE)
_MAXLENGTH = re.compile(r"\bmaxlength=[\"']?(\d+)", re.IGNORECASE)
_SECRET_KEYS = ("pw", "password")


class FatalConnError(RoseyError):
    """Retrying cannot help (ban, bad password, unknown channel): stay up, idle, alerting."""

    def __init__(self, reason: refusals.FatalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def chat_maxlength(page: str) -> int | None:
    """The ``maxlength`` of the channel page's chat input (the server's message limit)."""
    tag = _CHATLINE.search(page)
    found = _MAXLENGTH.search(tag.group(0)) if tag else None
    return int(found.group(1)) if found else None


def redact(event: str, data: Any) -> Any:
    """A frame as it may be logged: passwords never reach the log (docs/DECISIONS.md)."""
    if event == "channelPassword":
        return "***"
    if isinstance(data, dict) and any(k in data for k in _SECRET_KEYS):
        return {k: ("***" if k in _SECRET_KEYS and v else v) for k, v in data.items()}
    return data


class ConnService:
    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time,
                 policy: ReconnectPolicy | None = None,
                 fatal_reminder: float = FATAL_REMINDER) -> None:
        self.cfg = cfg
        self.fatal_reminder = fatal_reminder
        self.clock = clock
        self.channel = cfg.channel
        self.governor = Governor(limit=cfg.conn.message_length or DEFAULT_MESSAGE_LENGTH,
                                 max_parts=cfg.conn.max_parts, echo_timeout=cfg.conn.echo_timeout)
        self.session = Session(channel=cfg.channel, name=cfg.bot_name, password=cfg.password,
                               channel_password=cfg.conn.channel_password,
                               keepalive_afk=cfg.conn.keepalive_afk, governor=self.governor,
                               clock=clock)
        state = Path(cfg.paths.run_dir) / f"conn-{cfg.channel}.json"
        self.policy = policy or ReconnectPolicy(
            min_delay=cfg.conn.reconnect_min, max_delay=cfg.conn.reconnect_max,
            kick_delay=cfg.conn.kick_backoff, guest=not cfg.password, state_path=state)
        self.sio: socketio.AsyncClient | None = None
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        # What this channel's conns posted, across restarts (see ledger.py).
        self.ledger = Ledger(Path(cfg.paths.run_dir) / f"conn-{cfg.channel}.posted")
        self._later: set[asyncio.Task[None]] = set()
        self._refusal = ""

    @property
    def joined(self) -> bool:
        return self.session.joined

    # ---- router link ----------------------------------------------------------------------

    async def run(self) -> None:
        ctx = zmq.asyncio.Context()
        self.sock = ipc.dealer_socket(ctx, ipc.endpoint(self.cfg.paths.run_dir, "conn"),
                                      f"conn:{self.channel}")
        self.ledger.load()
        self.session.state("connecting")
        await self._flush()
        tasks = [asyncio.create_task(self._router_loop()),
                 asyncio.create_task(self._link_loop()),
                 asyncio.create_task(self._send_loop()),
                 asyncio.create_task(self._connection_loop()),
                 asyncio.create_task(metrics.watch_loop_lag("conn"))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in [*tasks, *self._later]:
                task.cancel()
            if self.sio is not None:
                with contextlib.suppress(Exception):
                    await self.sio.disconnect()
            self.sock.close(linger=200)
            ctx.term()
            self.ledger.close()

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
            await survive("conn router monitor", log, step)
        finally:
            monitor.close(linger=0)

    async def _router_loop(self) -> None:
        async def step() -> None:
            msg = ipc.decode_or_count(await self.sock.recv(), "conn", log)
            if isinstance(msg, Say):
                await self.accept_say(msg)
            elif isinstance(msg, ACTIONS):  # typed moderator actions (cytube/actions.py)
                self.session.act(msg)
                await self._flush()

        await survive("conn router link", log, step)

    async def accept_say(self, say: Say) -> None:
        """An offer of one reply segment; the router re-offers until we acknowledge it."""
        log.debug("say %s/%d received", say.id, say.seq)
        done, parts = accept(self.governor, self.ledger, say, self.clock())
        if done is not None:  # finished here or by an earlier conn: acknowledge again
            self._wake.set()  # (the re-offer may have ended a stream: its held text goes)
            await self.to_router(Delivered(channel=self.channel, say_id=say.id, ok=done,
                                           seq=say.seq, reason="" if done else "given up"))
            return
        metrics.SPLITS.inc(parts)
        metrics.GOVERNOR_DEPTH.set(self.governor.depth())
        self._wake.set()

    async def _flush(self) -> None:
        """Carry out what the session asked for: router messages, emits, lifecycle news."""
        out, emits, signals = self.session.take()
        for part in self.governor.confirmed:
            self.ledger.confirmed(part)
        self.governor.confirmed.clear()
        for msg in out:
            if isinstance(msg, Delivered):
                self.ledger.finished((msg.say_id, msg.seq), msg.ok)
            await self.to_router(msg)
        for emit in emits:
            if emit.delay > 0:
                task = asyncio.create_task(self._emit_later(emit, self.sio))
                self._later.add(task)
                task.add_done_callback(self._later.discard)
            else:
                await self._emit(emit.event, emit.data)
        for signal in signals:
            if signal == "joined":
                self.policy.record_joined()
                await asyncio.to_thread(self.policy.save)
            elif signal == "kicked":
                self.policy.record_kick()
            elif signal == "guest_login":
                self.policy.record_guest_login()
            elif signal == "fatal":
                self._closed.set()
        if self.session.wake:  # not on every frame: a wakeup costs the send loop a pass
            self.session.wake = False
            self._wake.set()

    # ---- outbound -------------------------------------------------------------------------

    async def _emit(self, event: str, data: Any) -> bool:
        """False when there is no live socket to emit on (nothing was sent)."""
        sio = self.sio
        # not sio.connected: that is only set after the connect handler, which joins
        if sio is None or "/" not in sio.namespaces:
            return False
        if self.cfg.conn.log_frames:
            log.info("frame out %s %s", event, redact(event, data))
        try:
            await sio.emit(event, data)
        except socketio.exceptions.SocketIOError:
            return False
        return True

    async def _emit_later(self, emit: Emit, sio: socketio.AsyncClient | None) -> None:
        await asyncio.sleep(emit.delay)
        if sio is self.sio:  # the same socket: a new one logs in by itself
            if emit.event == "login" and self.session.guest:
                self.policy.record_guest_login()
            await self._emit(emit.event, emit.data)

    async def _send_loop(self) -> None:
        await survive("conn send loop", log, self._send_step)

    async def _send_step(self) -> None:
        """One pass: expire, send what the limiter allows, flush, then sleep until woken."""
        self._wake.clear()  # before looking, so a Say arriving meanwhile is not missed
        now = self.clock()
        for outcome in self.governor.expire(now):
            self.session.finish(outcome)
        self.session.out.extend(self.session.actions.expire(now))
        delay = 1.0
        if self.joined and self.sio is not None and not self.session.fatal:
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
        metrics.GOVERNOR_DEPTH.set(self.governor.depth())
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
            metrics.BACKOFF.set(delay)
            if delay > 0:
                log.info("connecting in %.1f s (%s)", delay, cause)
                await asyncio.sleep(delay)
            self.policy.record_attempt()
            await asyncio.to_thread(self.policy.save)
            try:
                cause = await self._connect_once()
            except FatalConnError as exc:
                await self._idle_fatal(exc)
            except Exception as exc:
                log.warning("connection failed: %s: %s", type(exc).__name__, exc)
                cause = "rate_limited" if "Rate limit" in str(exc) else "failure"
            metrics.CONNECTED.labels(self.channel).set(0)
            metrics.RECONNECTS.labels(cause).inc()
            # Until the next socket has joined, the send loop must hold every part: what
            # it emitted on the dead socket never reached the server.
            self.sio = None
            self.session.socket_closed()
            self.governor.on_disconnect()
            for task in list(self._later):
                task.cancel()
            self.session.state("disconnected", self.session.kick_reason)
            await self._flush()

    async def _idle_fatal(self, exc: FatalConnError) -> None:
        """Stay up and idle (an exit would restart us into the server's limits and take away
        the /metrics that status and the alert read), repeating the fix every
        ``fatal_reminder`` s so a foreground ``rosey run`` cannot scroll it away."""
        metrics.FATAL.labels(self.channel, exc.reason).set(1)
        metrics.CONNECTED.labels(self.channel).set(0)
        metrics.CONNECT_ATTEMPTS.labels("fatal").inc()
        names = refusals.Names(name=self.session.name, domain=self.cfg.domain,
                               channel=self.channel)
        line = refusals.stopped_line(exc.reason, exc.detail, names)
        log.error("%s", line)
        self.session.state("fatal", line)
        await self._flush()
        if self.sio is not None:
            with contextlib.suppress(Exception):
                await self.sio.disconnect()
        while True:
            await asyncio.sleep(self.fatal_reminder)
            log.error("%s", line)  # the same words: grep finds every repeat

    async def lookup(self) -> str:
        """The socket URL from socketconfig (a 404 is fatal) and the channel's length limit."""
        base = self.cfg.domain.rstrip("/")
        url = f"{base}/socketconfig/{self.channel}.json"
        timeout = aiohttp.ClientTimeout(total=self.cfg.conn.connect_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.get(url) as resp:
                if resp.status == 404:
                    raise FatalConnError("no_channel", f"channel {self.channel!r} does not "
                                         f"exist at {self.cfg.domain} (socketconfig 404)")
                resp.raise_for_status()
                body = await resp.json(content_type=None)
            if not self.cfg.conn.message_length:
                self._set_limit(await self._page_maxlength(http, f"{base}/r/{self.channel}"))
        servers = body.get("servers") if isinstance(body, dict) else None
        if not servers:
            raise ConnectionError(f"{url} lists no socket servers")
        secure = [s for s in servers if isinstance(s, dict) and s.get("secure")]
        return str((secure or servers)[0]["url"])

    async def _page_maxlength(self, http: aiohttp.ClientSession, url: str) -> int | None:
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, UnicodeError):
            async with http.get(url) as resp:
                if resp.status == 200:
                    return chat_maxlength(await resp.text())
        return None

    def _set_limit(self, found: int | None) -> None:
        limit = found if found and 40 <= found <= 1000 else DEFAULT_MESSAGE_LENGTH
        if limit != self.governor.limit:
            log.info("chat messages are split at %d UTF-16 units (%s)", limit,
                     "channel page" if found else "default")
        self.governor.set_limit(limit)
        metrics.MESSAGE_LENGTH.set(limit)

    async def _connect_once(self) -> Cause:
        url = await self.lookup()
        metrics.MESSAGE_LENGTH.set(self.governor.limit)
        sio = socketio.AsyncClient(reconnection=False)
        self.sio = sio
        self._closed.clear()
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("connect_error", self._on_connect_error)
        sio.on("*", self.on_frame)
        self._refusal = ""
        try:
            await sio.connect(url, transports=["websocket"],
                              wait_timeout=self.cfg.conn.connect_timeout)
        except socketio.exceptions.ConnectionError as exc:
            reason = self._refusal or str(exc)  # the exception does not carry the message
            verdict = classify_connect_error(reason)
            metrics.CONNECT_ATTEMPTS.labels(verdict).inc()
            fatal = refusals.connect_reason(reason)
            if verdict == "fatal" and refusals.is_fatal(fatal):
                raise FatalConnError(fatal, f"refused by the server: {reason}") from exc
            raise ConnectionError(f"connect refused: {reason}") from exc
        metrics.CONNECT_ATTEMPTS.labels("connected").inc()
        await self._closed.wait()
        if self.session.fatal_reason is not None:
            raise FatalConnError(self.session.fatal_reason, self.session.fatal)
        with contextlib.suppress(Exception):
            await sio.disconnect()
        kick = self.session.kick_verdict
        log.warning("disconnected from %s%s", url,
                    f" (kicked: {self.session.kick_reason})" if kick else "")
        if kick in ("duplicate", "kick"):
            return "kick"
        if kick == "rate_limited":
            return "rate_limited"
        return "disconnect" if self.policy.log.failures == 0 else "failure"

    async def _on_connect(self) -> None:
        log.info("connected; joining %s as %s", self.channel, self.session.name)
        for emit in self.session.start_socket():
            await self._emit(emit.event, emit.data)
        await self._flush()

    async def _on_connect_error(self, data: Any = None) -> None:
        """``connect_error {"message": "Rate limit exceeded"}`` or "You are banned…"."""
        message = data.get("message") if isinstance(data, dict) else data
        self._refusal = str(message or "")

    async def _on_disconnect(self, *reason: Any) -> None:
        if self.cfg.conn.log_frames:
            log.info("frame in disconnect %s", reason)
        self._closed.set()

    # ---- inbound --------------------------------------------------------------------------

    async def on_frame(self, event: str, data: Any = None) -> None:
        if self.cfg.conn.log_frames:
            log.info("frame in %s %s", event, redact(event, data))
        self.session.on_frame(event, data)
        await self._flush()


def main_loop(cfg: Config) -> None:
    metrics.serve("conn", cfg.metrics.host, cfg.metrics.conn_port, cfg.metrics.enabled,
                  channels=[c.channel for c in channel_configs(cfg)])
    run_until_signalled(ConnService(cfg).run)
