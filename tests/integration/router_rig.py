"""The real router and caller processes over real ZeroMQ, with the test playing conn."""

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
        self.says: list[Say] = []

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

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                         for p in sorted(self.home.glob("*.log")))

    async def connect(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, f"conn:{CHANNEL}".encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"ipc://{self.home / 'run' / 'conn'}")
        await self.sock.send(encode(ConnState(channel=CHANNEL, state="connecting")))
        await self.sock.send(encode(UserList(channel=CHANNEL, users=[
            User(name="alice", rank=1), User(name="bob", rank=1), User(name="Mod", rank=2)])))

    async def chat(self, user: str, text: str) -> None:
        assert self.sock is not None
        await self.sock.send(encode(Chat(channel=CHANNEL, username=user, text=text,
                                         time=int(time.time() * 1000),
                                         received_at=time.time())))

    async def pm(self, user: str, text: str) -> None:
        assert self.sock is not None
        await self.sock.send(encode(Pm(channel=CHANNEL, username=user, text=text,
                                       time=int(time.time() * 1000), received_at=time.time())))

    async def next_say(self, timeout: float = 10.0, ack: bool = True) -> Say:
        assert self.sock is not None
        if not await self.sock.poll(int(timeout * 1000)):
            raise AssertionError(f"no Say within {timeout} s; logs:\n{self.logs()}")
        msg = decode(await self.sock.recv())
        assert isinstance(msg, Say), msg
        self.says.append(msg)
        if ack:
            await self.sock.send(encode(Delivered(channel=CHANNEL, say_id=msg.id, ok=True,
                                                  parts=1)))
        return msg

    async def no_say(self, within: float) -> None:
        assert self.sock is not None
        if await self.sock.poll(int(within * 1000)):
            raise AssertionError(f"unexpected {decode(await self.sock.recv())}")

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
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.sock is not None:
            self.sock.close(linger=0)
        self.ctx.term()
        shutil.rmtree(self.home, ignore_errors=True)
