"""The conn process: one ``ChannelClient`` per channel of the config, each on its own.

One process for every channel (a Python process costs ~35 MiB; a session ~1 MiB): each
channel has its own socket.io client, backoff and its state file, governor, rank, post
ledger and its own DEALER (identity ``conn:<channel>``) to the router. A session that
crashes is restarted alone, after a backoff; a ban, kick or wrong password idles only that
session. On SIGHUP (``rosey apply``) the config is read again and the channel diff applied:
new channels join, removed ones drain their governor (briefly) and leave, channels whose
connection settings changed restart, the others are not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import zmq.asyncio

from rosey import metrics
from rosey.config import Config, ConfigError, channel_configs, load_config
from rosey.conn import counts
from rosey.conn.client import FATAL_REMINDER, ChannelClient
from rosey.lifecycle import run_until_signalled

log = logging.getLogger("rosey.conn")

RESTART_MIN, RESTART_MAX = 1.0, 60.0  # a crashed session's restart backoff
HEALTHY_AFTER = 60.0  # a session that ran this long before crashing starts the ladder afresh
DRAIN_BOUND = 5.0  # seconds a removed channel may spend sending what its governor holds
# CyTube's io.ip-connection-limit (10 by default and on the recorded server, PROTOCOL §2):
# one socket per channel, so the sessions beyond it are kicked ("Too many connections").
IP_SOCKET_LIMIT = 10


def connection_settings(cfg: Config) -> dict[str, object]:
    """What a channel's session is built from: a change to any of it restarts the session."""
    conn = msgspec.to_builtins(cfg.conn)
    return {"domain": cfg.domain, "user": list(cfg.user), "paths.run_dir": cfg.paths.run_dir,
            **{f"conn.{key}": value for key, value in conn.items()}}


def changed_keys(old: Config, new: Config) -> list[str]:
    """The names (never the values: passwords) of the settings that differ."""
    a, b = connection_settings(old), connection_settings(new)
    return [key for key in b if a.get(key) != b[key]]


@dataclass
class Supervised:
    """One channel's session task and the client it currently runs."""

    cfg: Config
    task: asyncio.Task[None] | None = None
    client: ChannelClient | None = None
    crashes: int = 0


class ConnService:
    def __init__(self, cfg: Config, config_path: str | None = None,
                 clock: Callable[[], float] = time.time,
                 fatal_reminder: float = FATAL_REMINDER,
                 load: Callable[[str | None], Config] = load_config) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.clock = clock
        self.fatal_reminder = fatal_reminder
        self.load = load
        self.channels: dict[str, Supervised] = {}
        self.ctx: zmq.asyncio.Context | None = None
        self._applying = asyncio.Lock()
        self._reloads: set[asyncio.Future[list[str]]] = set()

    def client(self, channel: str = "") -> ChannelClient:
        """The running client of ``channel`` (default: the only or first one)."""
        entry = self.channels[channel or next(iter(self.channels))]
        assert entry.client is not None, f"{channel}: no session yet"
        return entry.client

    async def run(self) -> None:
        self.ctx = zmq.asyncio.Context()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        for cfg in channel_configs(self.cfg):
            self._start(cfg)
        self._check_socket_limit()
        try:
            await metrics.watch_loop_lag("conn")
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGHUP)
            await asyncio.gather(*(self._stop(name, 0.0) for name in list(self.channels)))
            self.ctx.term()

    # ---- supervision ----------------------------------------------------------------------

    def _start(self, cfg: Config) -> None:
        entry = self.channels[cfg.channel] = Supervised(cfg)
        entry.task = asyncio.create_task(self._supervise(entry), name=f"conn {cfg.channel}")

    async def _supervise(self, entry: Supervised) -> None:
        """Run the channel's session; a crash restarts it alone, after a growing pause."""
        loop = asyncio.get_running_loop()
        assert self.ctx is not None
        while True:
            entry.client = ChannelClient(entry.cfg, self.ctx, clock=self.clock,
                                         fatal_reminder=self.fatal_reminder)
            started = loop.time()
            try:
                await entry.client.run()
                return
            except Exception:
                entry.crashes = 0 if loop.time() - started > HEALTHY_AFTER else entry.crashes + 1
                pause = min(RESTART_MAX, RESTART_MIN * 2 ** (entry.crashes - 1))
                log.exception("channel %s: the session crashed; restarting it in %.0f s "
                              "(the other channels carry on)", entry.cfg.channel, pause)
            await asyncio.sleep(pause)

    async def _stop(self, channel: str, drain: float, why: str = "") -> None:
        entry = self.channels.pop(channel, None)
        if entry is None or entry.task is None:
            return
        if why and entry.client is not None:
            with contextlib.suppress(Exception):  # a broken session still has to go
                await entry.client.leave(drain, why)
        entry.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await entry.task

    # ---- rosey apply ----------------------------------------------------------------------

    def _on_sighup(self) -> None:
        task = asyncio.ensure_future(self.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> list[str]:
        """Read the config again and apply the channel diff; one log line per change."""
        async with self._applying:  # two quick SIGHUPs apply one after the other
            try:
                cfg = await asyncio.to_thread(self.load, self.config_path)
            except ConfigError as exc:
                log.error("config not applied (the channels run as before): %s", exc)
                return []
            return await self.apply(cfg)

    async def apply(self, cfg: Config) -> list[str]:
        wanted = {c.channel: c for c in channel_configs(cfg)}
        changes: list[str] = []
        removed = [name for name in self.channels if name not in wanted]
        for name in removed:
            changes.append(f"channel {name}: removed")
        restarts: list[tuple[Config, str]] = []
        for name, new in wanted.items():
            entry = self.channels.get(name)
            if entry is None:
                changes.append(f"channel {name}: added")
                continue
            keys = changed_keys(entry.cfg, new)
            stopped = entry.client is not None and entry.client.session.fatal_reason
            if keys:
                restarts.append((new, ", ".join(keys) + " changed"))
            elif stopped:
                restarts.append((new, f"it had stopped retrying ({stopped})"))
        changes += [f"channel {c.channel}: restarted: {why}" for c, why in restarts]
        for line in changes:
            log.info("%s", line)
        await asyncio.gather(
            *(self._stop(name, DRAIN_BOUND, "removed from the config") for name in removed),
            *(self._stop(c.channel, DRAIN_BOUND, f"restarting: {why}") for c, why in restarts))
        for name in removed:
            counts.forget(name)
        self.cfg = cfg
        for name, new in wanted.items():
            if name not in self.channels:
                self._start(new)
        if not changes:
            log.info("config applied: no channel changed")
        self._check_socket_limit()
        return changes

    def _check_socket_limit(self) -> None:
        if len(self.channels) > IP_SOCKET_LIMIT:
            log.warning("%d channels: CyTube allows %d sockets per IP by default "
                        "(io.ip-connection-limit) and each channel needs one; the sessions "
                        "beyond it are kicked and retry unless the site raised the limit",
                        len(self.channels), IP_SOCKET_LIMIT)


def main_loop(cfg: Config, config_path: str | None = None) -> None:
    metrics.serve("conn", cfg.metrics.host, cfg.metrics.conn_port, cfg.metrics.enabled,
                  channels=[c.channel for c in channel_configs(cfg)])
    run_until_signalled(ConnService(cfg, config_path).run)
