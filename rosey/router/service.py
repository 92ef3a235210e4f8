"""The router process: channel state, triggers, limits, history, commands, persistence,
and the caller-pool broker, behind three ZeroMQ sockets (conn, work, control).

It does no network I/O to CyTube or an LLM, so a slow model never delays chat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from rosey import ipc, metrics
from rosey.config import Config, ConfigError, channel_configs, load_config, provider_endpoints
from rosey.lifecycle import run_until_signalled, survive
from rosey.protocol import (
    Action,
    ActionResult,
    Chat,
    ChatCleared,
    ConnState,
    CtlReply,
    CtlRequest,
    Delivered,
    Heartbeat,
    LeaderChanged,
    MediaChanged,
    Message,
    Partial,
    Pm,
    Profile,
    RankChanged,
    Ready,
    Request,
    Result,
    Say,
    UserCount,
    UserJoined,
    UserLeft,
    UserList,
    UserMeta,
)
from rosey.protocol_moderation import MODERATION_UP
from rosey.router import commands
from rosey.router.actions import ActionDesk
from rosey.router.brain import Brain
from rosey.router.dispatch import Pool
from rosey.router.flow import Flow
from rosey.router.modwiring import mod_context
from rosey.router.records import Records
from rosey.router.resume import resume
from rosey.store import Store

log = logging.getLogger("rosey.router")
TICK = 0.05
MAINTENANCE_EVERY = 3600.0
# What each socket carries upward (rosey/protocol.py); any other kind is malformed there,
# counted in rosey_ipc_decode_errors_total like bytes that do not decode.  A new upward
# message must be added here.
CONN_UP: tuple[type[Message], ...] = (
    Chat, Pm, UserJoined, UserLeft, UserList, RankChanged, ConnState, Delivered, MediaChanged,
    UserMeta, Profile, LeaderChanged, UserCount, ChatCleared, *MODERATION_UP)
WORK_UP: tuple[type[Message], ...] = (Ready, Heartbeat, Partial, Result)
CONTROL_UP: tuple[type[Message], ...] = (CtlRequest,)


class RouterService:
    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time,
                 config_path: str | None = None):
        self.cfg = cfg
        self.clock = clock
        self.config_path = config_path or os.environ.get("ROSEY_CONFIG")
        self.store = Store(cfg.paths.database)
        self.records = Records(self.store, cfg.channel)
        self.pool = Pool(cfg.callers.liveness, cfg.router.queue_max)
        self.conn_identity = f"conn:{cfg.channel}".encode()
        self.brain = Brain(cfg, self.records, clock)
        self.flow = Flow(channel=cfg.channel, pool=self.pool, records=self.records,
                         policy=self.brain.reply_policy, fallback=cfg.llm.fallback_response,
                         post_ttl=cfg.conn.post_ttl, send_request=self._send_request,
                         send_say=self._send_say, on_answer=self.brain.on_answer, clock=clock)
        self.brain.flow = self.flow
        self.actions = ActionDesk(self._send_action)
        self.brain.mod = mod_context(cfg, self.brain, self.store, self.actions, clock)

    # ---- sockets -------------------------------------------------------------

    async def run(self) -> None:
        self._ctl_tasks: set[asyncio.Task[None]] = set()
        run_dir = self.cfg.paths.run_dir
        ipc.prepare_run_dir(run_dir)
        self._lock = ipc.lock_run_dir(run_dir, "router")
        self.store.open()
        self.brain.restore()
        self._ctx = zmq.asyncio.Context()
        self.conn_sock = ipc.router_socket(self._ctx, ipc.endpoint(run_dir, "conn"))
        self.work_sock = ipc.router_socket(self._ctx, ipc.endpoint(run_dir, "work"))
        self.ctl_sock = ipc.router_socket(self._ctx, ipc.endpoint(run_dir, "control"))
        log.info("router up: channel=%s provider=%s model=%s db=%s", self.cfg.channel,
                 self.cfg.llm.provider, self.cfg.llm.model, self.cfg.paths.database)
        await resume(self.flow, self.records.load_journal())
        tasks = [
            asyncio.create_task(self._recv_loop(self.conn_sock, self.on_conn_message, CONN_UP)),
            asyncio.create_task(self._recv_loop(self.work_sock, self.on_work_message, WORK_UP)),
            asyncio.create_task(self._recv_loop(self.ctl_sock, self.on_ctl_message,
                                                CONTROL_UP)),
            asyncio.create_task(self._tick_loop()),
            asyncio.create_task(self._maintenance_loop()),
            asyncio.create_task(self._stats_loop()),
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
            self.store.close()
            log.info("router stopped: %d requests pending, %d replies unacknowledged "
                     "(journaled; resumed on restart)", len(self.flow.pending),
                     len(self.flow.outbox))

    async def _recv_loop(self, sock: zmq.asyncio.Socket,
                         handler: Callable[[bytes, Message], Any],
                         accept: tuple[type[Message], ...]) -> None:
        while True:
            frames = await sock.recv_multipart()
            if len(frames) != 2:
                metrics.IPC_DECODE_ERRORS.labels("router").inc()
                log.warning("dropped IPC message with %d frames", len(frames))
                continue
            msg = ipc.decode_or_count(frames[1], "router", log, accept)
            if msg is None:
                continue
            try:
                await handler(frames[0], msg)
            except Exception:  # one bad message must not take the router down
                log.exception("error handling %s", type(msg).__name__)

    async def _tick_loop(self) -> None:
        async def step() -> None:
            await asyncio.sleep(TICK)
            await self.flow.tick()

        await survive("router tick", log, step)

    async def _maintenance_loop(self) -> None:
        async def step() -> None:
            self.records.prune(self.clock(), self.cfg.router.retention_days)
            metrics.DB_SIZE.set(await asyncio.to_thread(self.store.size_bytes))
            await asyncio.sleep(MAINTENANCE_EVERY)

        await survive("router maintenance", log, step)

    async def _stats_loop(self) -> None:
        interval = self.cfg.router.stats_interval

        async def step() -> None:
            await asyncio.sleep(interval)
            self.brain.statskeeper.sample(self.brain.channel, self.clock())

        if interval > 0:
            await survive("router stats", log, step)

    async def _send_action(self, action: Action) -> bool:
        return await ipc.send_to(self.conn_sock, self.conn_identity, action)

    async def _send_request(self, identity: bytes, request: Request) -> bool:
        return await ipc.send_to(self.work_sock, identity, request)

    async def _send_say(self, say: Say) -> bool:
        return await ipc.send_to(self.conn_sock, self.conn_identity, say)

    # ---- conn ------------------------------------------------------------------

    async def on_conn_message(self, identity: bytes, msg: Message) -> None:
        brain = self.brain
        if not isinstance(msg, ConnState):
            await self.flow.on_peer()  # conn is there: what it refused before goes now
        if isinstance(msg, Chat):
            metrics.CHAT_EVENTS.labels("chat").inc()
            await brain.on_chat(msg.username, msg.text, False, msg.received_at)
        elif isinstance(msg, Pm):
            metrics.CHAT_EVENTS.labels("pm").inc()
            await brain.on_pm(msg.username, msg.text, msg.received_at)
        elif isinstance(msg, Delivered):
            self.flow.on_delivered(msg.say_id, msg.ok, msg.reason, msg.seq, msg.parts)
        elif isinstance(msg, ActionResult):
            self.actions.on_result(msg)
        elif isinstance(msg, ConnState):
            self.conn_identity = identity
            brain.channel.conn_rank = msg.bot_rank
            log.info("conn %s: %s %s", msg.channel, msg.state, msg.detail)
            if msg.state in ("connecting", "joined"):
                await self.flow.flush_outbox()
        elif isinstance(msg, UserList):
            brain.channel.set_users(msg.users)
            for user in msg.users:
                self.records.user_seen(user.name, user.rank, self.clock(), False)
            brain.statskeeper.users_changed(brain.channel, self.clock())
        elif isinstance(msg, UserJoined):
            brain.channel.joined(msg.user)
            self.records.user_seen(msg.user.name, msg.user.rank, self.clock(), False)
            brain.statskeeper.users_changed(brain.channel, self.clock())
        elif isinstance(msg, UserLeft):
            brain.on_leave(msg.name)
            brain.statskeeper.users_changed(brain.channel, self.clock())
        elif isinstance(msg, RankChanged):
            brain.channel.rank_changed(msg.name, msg.rank)
        else:
            brain.on_other(msg)

    # ---- callers ---------------------------------------------------------------

    async def on_work_message(self, identity: bytes, msg: Message) -> None:
        if isinstance(msg, (Ready, Heartbeat)):
            requeued = self.pool.seen(identity, msg.incarnation, msg.slots, self.clock())
            if requeued:
                metrics.REQUESTS.labels(self.cfg.channel, "requeued").inc(len(requeued))
                log.warning("caller %s restarted: requeued %d requests", msg.caller,
                            len(requeued))
                await self.flow.requeued(requeued)
            await self.flow.dispatch()
        elif isinstance(msg, Partial):
            await self.flow.on_partial(msg)
        elif isinstance(msg, Result):
            await self.flow.on_result(msg)

    # ---- control ---------------------------------------------------------------

    async def on_ctl_message(self, identity: bytes, msg: Message) -> None:
        if not isinstance(msg, CtlRequest):
            return
        line = " ".join([msg.command, *msg.args])

        async def answer() -> None:  # playlist and kick commands wait for the server
            ok, text = await self.brain.command(commands.Actor(
                "cli", 255, self.cfg.router.command_rank, cli=True), line)
            await ipc.send_to(self.ctl_sock, identity, CtlReply(ok=ok, text=text))

        task = asyncio.create_task(answer())
        self._ctl_tasks.add(task)
        task.add_done_callback(self._ctl_tasks.discard)

    def reload(self) -> str:
        try:
            cfg = load_config(self.config_path)
        except ConfigError as exc:
            return f"reload refused: {exc}"
        self.brain.reload(cfg)
        return ("reloaded prompt, personas, triggers, limits and blocklist; other settings "
                "need `rosey run` again")


def main_loop(cfg: Config, config_path: str | None = None) -> None:
    endpoints = [(e.name, e.capacity) for e in provider_endpoints(cfg, cfg.llm.provider)]
    metrics.serve("router", cfg.metrics.host, cfg.metrics.router_port, cfg.metrics.enabled,
                  channels=[c.channel for c in channel_configs(cfg)], endpoints=endpoints)
    service = RouterService(cfg, config_path=config_path)
    service.brain.reload_hook = service.reload
    run_until_signalled(service.run)
