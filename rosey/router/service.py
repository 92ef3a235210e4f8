"""The router process: channel state, triggers, limits, history, commands, persistence,
and the caller-pool broker, behind three ZeroMQ sockets (conn, work, control).

It does no network I/O to CyTube or an LLM, so a slow model never delays chat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
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
    Chat,
    ConnState,
    CtlReply,
    CtlRequest,
    Delivered,
    Heartbeat,
    MediaChanged,
    Message,
    Partial,
    Pm,
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
from rosey.router.build import build_router
from rosey.router.dispatch import Pool
from rosey.router.endpoints import endpoints_from_config
from rosey.router.records import Records
from rosey.store import Store

log = logging.getLogger("rosey.router")
TICK = 0.05
MAINTENANCE_EVERY = 3600.0
# What each socket carries upward (rosey/protocol.py); any other kind is malformed there,
# counted in rosey_ipc_decode_errors_total like bytes that do not decode.  A new upward
# message must be added here.
CONN_UP: tuple[type[Message], ...] = (
    Chat, Pm, UserJoined, UserLeft, UserList, RankChanged, ConnState, Delivered, MediaChanged,
    UserMeta, UserCount, *MODERATION_UP)
WORK_UP: tuple[type[Message], ...] = (Ready, Heartbeat, Partial, Result)
CONTROL_UP: tuple[type[Message], ...] = (CtlRequest,)


class RouterService:
    """The sockets and the loops; the channels themselves are ``router/channels.py``'s."""

    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time,
                 config_path: str | None = None):
        self.cfg = cfg
        self.clock = clock
        self.config_path = config_path or os.environ.get("ROSEY_CONFIG")
        self.store = Store(cfg.paths.database)
        self.pool = Pool(cfg.callers.liveness, cfg.router.queue_max, endpoints_from_config(cfg))
        self.conn_identities: dict[str, bytes] = {}  # channel -> conn's DEALER, as it spoke
        self.router = build_router(cfg, wire=self, pool=self.pool, store=self.store,
                                   clock=clock, reload=self.reload)
        self.flow = self.router.flow
        self._applying: set[asyncio.Task[str]] = set()

    # ---- sockets -------------------------------------------------------------

    async def run(self) -> None:
        self._ctl_tasks: set[asyncio.Task[None]] = set()
        # `rosey apply`: re-read the config (the default action would end the process).
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.apply_config)
        run_dir = self.cfg.paths.run_dir
        ipc.prepare_run_dir(run_dir)
        self._lock = ipc.lock_run_dir(run_dir, "router")
        self.store.open()
        self.router.restore()
        self._ctx = zmq.asyncio.Context()
        self.conn_sock = ipc.router_socket(self._ctx, ipc.endpoint(run_dir, "conn"))
        self.work_sock = ipc.router_socket(self._ctx, ipc.endpoint(run_dir, "work"))
        self.ctl_sock = ipc.router_socket(self._ctx, ipc.endpoint(run_dir, "control"))
        log.info("router up: channels=%s provider=%s model=%s db=%s",
                 ",".join(self.router.cores), self.cfg.llm.provider, self.cfg.llm.model,
                 self.cfg.paths.database)
        await self.router.resume()
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
            await self.router.tick()

        await survive("router tick", log, step)

    async def _maintenance_loop(self) -> None:
        async def step() -> None:
            Records(self.store, "").prune(self.clock(), self.cfg.router.retention_days)
            metrics.DB_SIZE.set(await asyncio.to_thread(self.store.size_bytes))
            await asyncio.sleep(MAINTENANCE_EVERY)

        await survive("router maintenance", log, step)

    async def _stats_loop(self) -> None:
        interval = self.cfg.router.stats_interval

        async def step() -> None:
            await asyncio.sleep(interval)
            for core in list(self.router.cores.values()):
                core.statskeeper.sample(core.channel, self.clock())

        if interval > 0:
            await survive("router stats", log, step)

    def _conn(self, channel: str) -> bytes:
        return self.conn_identities.get(channel) or f"conn:{channel}".encode()

    async def send_action(self, action: Action) -> bool:
        return await ipc.send_to(self.conn_sock, self._conn(action.channel), action)

    async def send_request(self, identity: bytes, request: Request) -> bool:
        return await ipc.send_to(self.work_sock, identity, request)

    async def send_say(self, say: Say) -> bool:
        return await ipc.send_to(self.conn_sock, self._conn(say.channel), say)

    # ---- conn and callers --------------------------------------------------------

    async def on_conn_message(self, identity: bytes, msg: Message) -> None:
        if isinstance(msg, ConnState):
            self.conn_identities[msg.channel] = identity
        await self.router.on_conn(msg)

    async def on_work_message(self, identity: bytes, msg: Message) -> None:
        await self.router.on_work(identity, msg, self.clock())

    # ---- control ---------------------------------------------------------------

    async def on_ctl_message(self, identity: bytes, msg: Message) -> None:
        if not isinstance(msg, CtlRequest):
            return
        line = " ".join([msg.command, *msg.args])

        async def answer() -> None:  # playlist and kick commands wait for the server
            ok, text = await self.router.command(msg.channel, line)
            await ipc.send_to(self.ctl_sock, identity, CtlReply(ok=ok, text=text))

        task = asyncio.create_task(answer())
        self._ctl_tasks.add(task)
        task.add_done_callback(self._ctl_tasks.discard)

    def apply_config(self) -> None:
        """SIGHUP (``rosey apply``, which signals conn too): re-read the config and apply
        it to every channel (new ones join, removed ones leave, the others keep their state)."""
        self._reread(channels=True)

    def reload(self) -> str:
        """``!reload``: the new settings of the channels served now.  Joining and leaving
        is ``rosey apply``'s alone: conn re-reads only on SIGHUP, and a router serving a
        channel conn does not (or the reverse) would drop its lines."""
        return self._reread(channels=False)

    def _reread(self, channels: bool) -> str:
        try:
            cfgs = channel_configs(load_config(self.config_path))
        except ConfigError as exc:
            log.warning("reload refused: %s", exc)
            return f"reload refused: {exc}"
        task = asyncio.get_running_loop().create_task(self.router.apply(cfgs, channels))
        self._applying.add(task)
        task.add_done_callback(self._applied)
        return ("reloaded prompt, personas, triggers, limits and blocklist; channels: use "
                "rosey apply; other settings need `rosey run` again")

    def _applied(self, task: asyncio.Task[str]) -> None:
        self._applying.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("applying the config failed: %r", task.exception())
        elif not task.cancelled():
            log.info("config applied%s", f": {task.result()}" if task.result() else "")


def main_loop(cfg: Config, config_path: str | None = None) -> None:
    endpoints = [(e.name, e.capacity) for e in provider_endpoints(cfg, cfg.llm.provider)]
    metrics.serve("router", cfg.metrics.host, cfg.metrics.router_port, cfg.metrics.enabled,
                  channels=[c.channel for c in channel_configs(cfg)], endpoints=endpoints)
    service = RouterService(cfg, config_path=config_path)
    run_until_signalled(service.run)
