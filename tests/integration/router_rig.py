"""The real router and caller processes over real ZeroMQ, with the test playing conn.

The stand-in conn is no kinder than the real one: one DEALER for its whole life (the real
socket options, reconnecting by itself when the router restarts), ``ConnState`` and the
user list sent at start and again only when that DEALER reconnects (as the real conn's
link monitor does; ``announce=False`` plays a conn that never does), every reply segment
acknowledged per ``(id, seq)``, and a re-offer of a segment it already "posted"
acknowledged again instead of posted twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from rosey import ipc
from rosey.protocol import Chat, ConnState, Delivered, Pm, Say, User, UserList, decode, encode
from tests.e2e.harness import SCRUBBED_ENV, free_port, free_port_range, merge

CHANNEL = "testchan"


class RouterRig:
    def __init__(self, llm: dict[str, Any], **overrides: Any):
        self.home = Path(tempfile.mkdtemp(prefix="rr-", dir="/tmp"))
        self.config_path = self.home / "config.json"
        config = {
            "domain": "http://127.0.0.1:9", "channel": CHANNEL, "user": ["roseybot", "pw"],
            "llm": {"llm_triggers": ["rosey"], "response_timeout": 5, "llm_cooldown": 0, **llm},
            "callers": {"count": 2, "max": 4, "heartbeat_interval": 0.2, "liveness": 1.0},
            "metrics": {"conn_port": free_port(), "router_port": free_port(),
                        "caller_base_port": free_port_range(4)},
            "log": {"level": "DEBUG"},
        }
        self.config = merge(config, overrides)
        self.config_path.write_text(json.dumps(self.config))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ctx = zmq.asyncio.Context()
        self.sock: zmq.asyncio.Socket | None = None
        self.says: list[Say] = []  # every segment "posted", once each
        self.offers = 0  # Says received, re-offers included
        self._acked: set[tuple[str, int]] = set()
        self._monitor: asyncio.Task[None] | None = None
        self._monitor_sock: zmq.asyncio.Socket | None = None

    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items()
                if k not in SCRUBBED_ENV and not k.startswith("ROSEY_")}

    def start(self, name: str) -> None:
        module, *extra = ("rosey.procs.router",) if name == "router" else (
            "rosey.procs.caller", "--index", name.split("-")[1])
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module, "--config", str(self.config_path), *extra],
            stdout=log, stderr=subprocess.STDOUT, env=self._env())
        log.close()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        proc.wait(timeout=20)

    def kill_signal(self, name: str, sig: int) -> None:
        """Send ``sig`` and do not wait (SIGHUP: the process carries on)."""
        self.procs[name].send_signal(sig)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.home.glob("*.log")))

    async def connect(self, announce: bool = True) -> None:
        """Start the stand-in conn, once (the real one never opens a second socket)."""
        assert self.sock is None, "the real conn never opens a second socket"
        self.sock = ipc.dealer_socket(self.ctx, ipc.endpoint(str(self.home / "run"), "conn"),
                                      f"conn:{CHANNEL}")
        await self.sock.send(encode(ConnState(channel=CHANNEL, state="connecting")))
        await self._announce()
        if announce:
            self._monitor = asyncio.create_task(self._link_monitor(self.sock))

    async def _announce(self) -> None:
        assert self.sock is not None
        await self.sock.send(encode(UserList(channel=CHANNEL, users=[
            User(name="alice", rank=1), User(name="bob", rank=1), User(name="Mod", rank=2)])))
        await self.sock.send(encode(ConnState(channel=CHANNEL, state="joined")))

    async def _link_monitor(self, sock: zmq.asyncio.Socket) -> None:
        monitor = self._monitor_sock = sock.get_monitor_socket(zmq.EVENT_CONNECTED)
        while True:
            if parse_monitor_message(await monitor.recv_multipart())["event"] \
                    == zmq.EVENT_CONNECTED:
                await self._announce()

    async def chat(self, user: str, text: str) -> None:
        assert self.sock is not None
        await self.sock.send(encode(Chat(channel=CHANNEL, username=user, text=text,
                                         time=int(time.time() * 1000),
                                         received_at=time.time())))

    async def pm(self, user: str, text: str) -> None:
        assert self.sock is not None
        await self.sock.send(encode(Pm(channel=CHANNEL, username=user, text=text,
                                       time=int(time.time() * 1000), received_at=time.time())))

    async def _ack(self, say: Say) -> None:
        assert self.sock is not None
        self._acked.add((say.id, say.seq))
        await self.sock.send(encode(Delivered(channel=CHANNEL, say_id=say.id, ok=True, parts=1,
                                              seq=say.seq)))

    async def _new_say(self, timeout: float) -> Say | None:
        """The next segment not posted yet; re-offers are handled as the real conn does
        (acknowledged again if done, ignored while still "posting")."""
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not await self.sock.poll(max(1, int(left * 1000))):
                break
            msg = decode(await self.sock.recv())
            assert isinstance(msg, Say), msg
            self.offers += 1
            key = (msg.id, msg.seq)
            if key in self._acked:
                await self._ack(msg)
            elif all((s.id, s.seq) != key for s in self.says):
                self.says.append(msg)
                return msg
        return None

    async def next_say(self, timeout: float = 10.0, ack: bool = True) -> Say:
        """The next reply segment "posted"; ``ack=False`` plays a conn that has not seen
        its echo yet (``ack_all`` later)."""
        say = await self._new_say(timeout)
        if say is None:
            raise AssertionError(f"no Say within {timeout} s; logs:\n{self.logs()}")
        if ack:
            await self._ack(say)
        return say

    async def ack_all(self) -> None:
        for say in self.says:
            if (say.id, say.seq) not in self._acked:
                await self._ack(say)

    async def no_say(self, within: float) -> None:
        say = await self._new_say(within)
        if say is not None:
            raise AssertionError(f"unexpected {say}")

    async def wait_callers(self, count: int, timeout: float = 15.0) -> None:
        from tests.e2e.harness import Rosey

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                alive = Rosey.metric_at(self.config["metrics"]["router_port"],
                                        "rosey_router_callers_alive")
            except OSError:
                alive = 0
            if alive >= count:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"callers never came up; logs:\n{self.logs()}")

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
        if self._monitor_sock is not None:
            self._monitor_sock.close(linger=0)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.sock is not None:
            self.sock.close(linger=0)
        self.ctx.term()
        shutil.rmtree(self.home, ignore_errors=True)
