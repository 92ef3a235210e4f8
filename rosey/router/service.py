"""The router process: channel state, triggers, limits, history, and the caller-pool broker.

It binds the three ZeroMQ sockets (conn, work, control) and never does network I/O
to CyTube or an LLM itself, so a slow model never delays chat handling.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import zmq
import zmq.asyncio

from rosey import ipc, metrics
from rosey.config import DEFAULT_SYSTEM_PROMPT, Config
from rosey.lifecycle import run_until_signalled
from rosey.protocol import (
    Chat,
    ConnState,
    CtlReply,
    CtlRequest,
    Delivered,
    Heartbeat,
    Message,
    Pm,
    RankChanged,
    Ready,
    Request,
    Result,
    Say,
    Turn,
    User,
    UserJoined,
    UserLeft,
    UserList,
)
from rosey.router import commands
from rosey.router.dispatch import Job, Pool
from rosey.router.history import History
from rosey.router.limits import Cooldowns
from rosey.router.prompts import (
    address,
    build_turns,
    load_system_prompt,
    postprocess,
    render_system_prompt,
)
from rosey.router.triggers import TriggerMatcher

log = logging.getLogger("rosey.router")
TICK = 0.05
OUTBOX_MAX = 256


@dataclass(slots=True)
class Pending:
    """What the router needs to answer one accepted trigger."""

    user: str
    channel: str
    private: bool
    received_at: float
    text: str


class RouterService:
    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.clock = clock
        self.bot_name = cfg.bot_name
        llm = cfg.llm
        self.matcher = TriggerMatcher(cfg.bot_name, llm.llm_triggers,
                                      cfg.router.bot_name_trigger)
        self.cooldowns = Cooldowns(llm.llm_cooldown, cfg.router.limits.global_cooldown,
                                   cfg.router.limits.exempt_rank)
        self.history = History(llm.max_history_messages, cfg.router.history_chars)
        self.system_template = load_system_prompt(llm.system_prompt, llm.system_prompt_file,
                                                  DEFAULT_SYSTEM_PROMPT)
        self.pool = Pool(cfg.callers.liveness, cfg.router.queue_max)
        self.toggles = commands.Toggles(llm_enabled=llm.enabled, cooldown=llm.llm_cooldown)
        self.pending: dict[str, Pending] = {}
        self.outbox: OrderedDict[str, tuple[Say, float]] = OrderedDict()
        self.users: dict[str, User] = {}
        self.ignored = {name.lower() for name in cfg.router.ignore_users}
        self.conn_identity = f"conn:{cfg.channel}".encode()
        self.now_playing = ""
        self._ctx: zmq.asyncio.Context | None = None

    # ---- sockets ---------------------------------------------------------

    async def run(self) -> None:
        run_dir = self.cfg.paths.run_dir
        ipc.prepare_run_dir(run_dir)
        self._lock = ipc.lock_run_dir(run_dir, "router")
        self._ctx = zmq.asyncio.Context()
        self.conn_sock = ipc.router_socket(self._ctx, ipc.endpoint(run_dir, "conn"))
        self.work_sock = ipc.router_socket(self._ctx, ipc.endpoint(run_dir, "work"))
        self.ctl_sock = ipc.router_socket(self._ctx, ipc.endpoint(run_dir, "control"))
        log.info("router up: channel=%s provider=%s model=%s run_dir=%s", self.cfg.channel,
                 self.cfg.llm.provider, self.cfg.llm.model, run_dir)
        tasks = [
            asyncio.create_task(self._recv_loop(self.conn_sock, self.on_conn_message)),
            asyncio.create_task(self._recv_loop(self.work_sock, self.on_work_message)),
            asyncio.create_task(self._recv_loop(self.ctl_sock, self.on_ctl_message)),
            asyncio.create_task(self._tick_loop()),
            asyncio.create_task(metrics.watch_loop_lag("router")),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for sock in (self.conn_sock, self.work_sock, self.ctl_sock):
                sock.close(linger=0)
            self._ctx.term()
            log.info("router stopped: %d pending, %d unacknowledged replies",
                     len(self.pending), len(self.outbox))

    async def _recv_loop(self, sock: zmq.asyncio.Socket,
                         handler: Callable[[bytes, Message], object]) -> None:
        while True:
            frames = await sock.recv_multipart()
            if len(frames) != 2:
                metrics.IPC_DECODE_ERRORS.labels("router").inc()
                log.warning("dropped IPC message with %d frames", len(frames))
                continue
            msg = ipc.decode_or_count(frames[1], "router", log)
            if msg is None:
                continue
            try:
                result = handler(frames[0], msg)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # one bad message must not take the router down
                log.exception("error handling %s", type(msg).__name__)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            await self.tick()

    # ---- conn ------------------------------------------------------------

    async def on_conn_message(self, identity: bytes, msg: Message) -> None:
        if isinstance(msg, Chat):
            metrics.CHAT_EVENTS.labels("chat").inc()
            await self.on_chat(msg.username, msg.text, msg.channel, False, msg.received_at)
        elif isinstance(msg, Pm):
            metrics.CHAT_EVENTS.labels("pm").inc()
            await self.on_pm(msg)
        elif isinstance(msg, Delivered):
            self.on_delivered(msg)
        elif isinstance(msg, ConnState):
            self.conn_identity = identity
            log.info("conn %s: %s %s", msg.channel, msg.state, msg.detail)
            if msg.state in ("connecting", "joined"):
                await self._flush_outbox()
        elif isinstance(msg, UserList):
            self.users = {u.name.lower(): u for u in msg.users}
        elif isinstance(msg, UserJoined):
            self.users[msg.user.name.lower()] = msg.user
        elif isinstance(msg, UserLeft):
            self.users.pop(msg.name.lower(), None)
        elif isinstance(msg, RankChanged):
            user = self.users.get(msg.name.lower())
            if user is not None:
                user.rank = msg.rank

    def rank_of(self, name: str) -> float:
        user = self.users.get(name.lower())
        return user.rank if user is not None else 0.0

    async def on_chat(self, user: str, text: str, channel: str, private: bool,
                      received_at: float) -> None:
        now = self.clock()
        lowered = user.lower()
        if lowered == self.bot_name.lower() or lowered in self.ignored or user == "[server]":
            return
        if not self.toggles.llm_enabled or now < self.toggles.quiet_until:
            return
        if lowered in self.toggles.optouts:
            return
        if private:
            kind = "pm"
        else:
            hit = self.matcher.match(text)
            if hit is None:
                return
            kind = hit.kind
        metrics.TRIGGERS.labels(kind).inc()
        if self._coalesce(user, text):
            return
        refusal = self.cooldowns.check(user, now, self.rank_of(user))
        if refusal is not None:
            metrics.RATE_LIMITED.labels(refusal.scope).inc()
            log.info("refused %s: %s cooldown, %.1f s left", user, refusal.scope,
                     refusal.retry_in)
            return
        if len(self.pool.queue) >= self.pool.queue_max:
            metrics.RATE_LIMITED.labels("queue").inc()
            return
        self.cooldowns.accept(user, now)
        system = render_system_prompt(self.system_template, bot_name=self.bot_name,
                                      channel=channel, user=user,
                                      now_playing=self.now_playing)
        turns = build_turns(system, self.history.turns(user), text, user)
        self.history.append(user, "user", f"{user}: {text}")
        request = Request(id=uuid.uuid4().hex, deadline=now + self.cfg.llm.response_timeout,
                          provider=self.cfg.llm.provider, model=self.cfg.llm.model, turns=turns)
        self.pending[request.id] = Pending(user, channel, private, received_at or now, text)
        self.pool.submit(Job(request, now))
        log.debug("request %s accepted for %s (%s)", request.id, user, kind)
        metrics.REQUESTS.labels("accepted").inc()
        await self.dispatch()

    def _coalesce(self, user: str, text: str) -> bool:
        """A trigger not yet dispatched absorbs later ones from the same user."""
        for job in self.pool.queue:
            pending = self.pending.get(job.request.id)
            if pending is not None and pending.user.lower() == user.lower():
                job.request.turns.append(Turn("user", f"{user}: {text}"))
                self.history.append(user, "user", f"{user}: {text}")
                metrics.REQUESTS.labels("coalesced").inc()
                return True
        return False

    async def on_pm(self, msg: Pm) -> None:
        prefix = self.cfg.router.command_prefix
        if msg.username.lower() == self.bot_name.lower():
            return
        if msg.text.startswith(prefix):
            actor = commands.Actor(msg.username, self.rank_of(msg.username))
            _ok, reply = self.run_command(actor, msg.text[len(prefix):])
            await self.say(msg.channel, reply, pm_to=msg.username, say_id=uuid.uuid4().hex)
            return
        await self.on_chat(msg.username, msg.text, msg.channel, True, msg.received_at)

    def on_delivered(self, msg: Delivered) -> None:
        entry = self.outbox.pop(msg.say_id, None)
        metrics.REPLIES.labels("delivered" if msg.ok else "undelivered").inc()
        if entry is None:
            return
        if msg.ok:
            metrics.REPLY_LATENCY.observe(max(0.0, self.clock() - entry[1]))
        else:
            log.warning("reply %s not delivered: %s", msg.say_id, msg.reason)

    async def say(self, channel: str, text: str, *, pm_to: str = "", say_id: str,
                  received_at: float | None = None) -> None:
        now = self.clock()
        say = Say(id=say_id, channel=channel, text=text, pm_to=pm_to,
                  expires_at=now + self.cfg.conn.post_ttl)
        self.outbox[say_id] = (say, received_at if received_at is not None else now)
        while len(self.outbox) > OUTBOX_MAX:
            dropped, _ = self.outbox.popitem(last=False)[1]
            log.warning("outbox full: dropped reply %s", dropped.id)
        await ipc.send_to(self.conn_sock, self.conn_identity, say)

    async def _flush_outbox(self) -> None:
        now = self.clock()
        for say_id, (say, _) in list(self.outbox.items()):
            if say.expires_at <= now:
                del self.outbox[say_id]
                continue
            await ipc.send_to(self.conn_sock, self.conn_identity, say)

    # ---- callers ---------------------------------------------------------

    async def on_work_message(self, identity: bytes, msg: Message) -> None:
        now = self.clock()
        if isinstance(msg, (Ready, Heartbeat)):
            requeued = self.pool.seen(identity, msg.incarnation, msg.slots, now)
            if requeued:
                metrics.REQUESTS.labels("requeued").inc(len(requeued))
                log.warning("caller %s restarted: requeued %d requests", msg.caller,
                            len(requeued))
            await self.dispatch()
        elif isinstance(msg, Result):
            await self.on_result(msg)

    async def dispatch(self) -> None:
        for identity, job in self.pool.assign(self.clock()):
            if not await ipc.send_to(self.work_sock, identity, job.request):
                log.warning("caller %s unreachable; requeueing %s", identity.decode(),
                            job.request.id)
                self.pool.unassign(job.request.id)
        self._update_gauges()

    async def on_result(self, result: Result) -> None:
        log.debug("result %s from %s: ok=%s", result.id, result.caller, result.ok)
        job = self.pool.complete(result.id)
        pending = self.pending.pop(result.id, None)
        if job is None or pending is None:
            metrics.REQUESTS.labels("late").inc()
            return
        if result.ok:
            text = postprocess(result.text, self.cfg.router.max_reply_chars)
            if text:
                metrics.REQUESTS.labels("answered").inc()
                self.history.append(pending.user, "assistant", text)
                await self._reply(pending, result.id, text, "llm")
                await self.dispatch()
                return
        metrics.REQUESTS.labels(f"error_{result.error_kind or 'empty'}").inc()
        log.warning("request %s failed after %.2f s: %s %s", result.id, result.latency,
                    result.error_kind, result.error)
        await self._reply(pending, result.id, self.cfg.llm.fallback_response, "fallback")
        await self.dispatch()

    async def _reply(self, pending: Pending, say_id: str, text: str, kind: str) -> None:
        metrics.REPLIES.labels(kind).inc()
        if pending.private:
            await self.say(pending.channel, text, pm_to=pending.user, say_id=say_id,
                           received_at=pending.received_at)
        else:
            await self.say(pending.channel, address(pending.user, text), say_id=say_id,
                           received_at=pending.received_at)

    async def tick(self) -> None:
        now = self.clock()
        expired = self.pool.expire(now)
        for identity in expired.dead_callers:
            log.warning("caller %s silent for %.1f s: dropped", identity.decode(),
                        self.pool.liveness)
        if expired.requeued:
            metrics.REQUESTS.labels("requeued").inc(len(expired.requeued))
        for job in expired.shed:
            pending = self.pending.pop(job.request.id, None)
            metrics.REQUESTS.labels("shed").inc()
            if pending is not None:
                log.warning("request %s missed its deadline: fallback", job.request.id)
                await self._reply(pending, job.request.id, self.cfg.llm.fallback_response,
                                  "fallback")
        for say_id, (say, _) in list(self.outbox.items()):
            if say.expires_at <= now:
                del self.outbox[say_id]
                metrics.REPLIES.labels("expired").inc()
        await self.dispatch()

    def _update_gauges(self) -> None:
        now = self.clock()
        metrics.QUEUE_DEPTH.set(len(self.pool.queue))
        metrics.QUEUE_OLDEST.set(self.pool.oldest_age(now))
        metrics.IN_FLIGHT.set(len(self.pool.in_flight))
        metrics.CALLERS_ALIVE.set(self.pool.alive())

    # ---- control ---------------------------------------------------------

    async def on_ctl_message(self, identity: bytes, msg: Message) -> None:
        if not isinstance(msg, CtlRequest):
            return
        line = " ".join([msg.command, *msg.args])
        ok, text = self.run_command(commands.Actor("cli", 255), line)
        await ipc.send_to(self.ctl_sock, identity, CtlReply(ok=ok, text=text))

    def run_command(self, actor: commands.Actor, line: str) -> tuple[bool, str]:
        ctx = commands.CommandContext(
            toggles=self.toggles, now=self.clock(), status=self.status_line,
            forget=self.history.forget, set_cooldown=self._set_cooldown)
        ok, text = commands.execute(ctx, actor, line)
        log.info("command by %s: %r -> %s", actor.name, line, "ok" if ok else "refused")
        return ok, text

    def _set_cooldown(self, seconds: float) -> None:
        self.cooldowns.user_cooldown = seconds

    def status_line(self) -> str:
        return (f"llm={'on' if self.toggles.llm_enabled else 'off'} "
                f"callers={self.pool.alive()} queue={len(self.pool.queue)} "
                f"in_flight={len(self.pool.in_flight)} users={len(self.users)} "
                f"cooldown={self.cooldowns.user_cooldown:g}s")


def main_loop(cfg: Config) -> None:
    metrics.serve("router", cfg.metrics.host, cfg.metrics.router_port, cfg.metrics.enabled)
    run_until_signalled(RouterService(cfg).run)
