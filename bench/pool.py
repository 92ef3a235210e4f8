"""Caller-pool throughput and a caller's added latency, with real processes.

    python -m bench.pool [--latency 1.0] [--rounds 4] [--sizes 1,2,4] [--slots 1,4,16]

Throughput: the real router (``procs.router``) and N real callers (``procs.caller``)
are started directly (no supervisord, no CyTube): this script plays conn on
``ipc://RUN/conn`` (a DEALER with conn's identity, answering every Say with Delivered)
and serves a fake Ollama whose every answer takes ``--latency`` seconds.  It sends
callers x slots x rounds mentions from distinct users at once and times the first
mention to the last reply.  The ideal is callers x slots / latency replies/s; the ratio
measured / ideal says what the pool loses to queueing, IPC and scheduling.

Added latency: this script plays the router on ``ipc://RUN/work`` for one caller and
sends it requests one at a time; the fake provider stamps each HTTP request's arrival.
Arrival - sent is the caller's overhead (IPC hop, decode, retry policy, SDK, HTTP
send), per provider SDK, with the caller's RSS after the run (docs/DECISIONS.md: <= 80 MiB).

Wall time is measured here and only here; tests use virtual clocks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from bench.util import pct, rss_mib
from fakes.deployment import free_port, free_port_range
from fakes.llm import FakeLLM, Kind
from rosey import ipc
from rosey.protocol import (
    Chat,
    ConnState,
    Delivered,
    Ready,
    Request,
    Result,
    Say,
    Turn,
    decode,
    encode,
)

ROOT = Path(__file__).resolve().parents[1]
CHANNEL, BOT = "bench", "benchbot"




class Deployment:
    """A config in a short temporary folder and the processes started from it."""

    def __init__(self, llm: dict[str, Any], callers: int, slots: int,
                 sections: dict[str, Any] | None = None) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="rp-", dir="/tmp"))
        self.metrics = {"router_port": free_port(), "conn_port": free_port(),
                        "caller_base_port": free_port_range(max(callers, 1))}
        config = {
            "channel": CHANNEL, "user": [BOT, ""],
            "llm": {"llm_cooldown": 0, "response_timeout": 120, **llm},
            "router": {"queue_max": 4096},
            "callers": {"count": max(callers, 1), "max": max(callers, 1), "slots": slots},
            "metrics": self.metrics, "paths": {"run_dir": "run", "data_dir": "data"},
            "log": {"level": os.environ.get("BENCH_LOG", "WARNING")},
            **(sections or {}),
        }
        self.config = self.home / "config.json"
        self.config.write_text(json.dumps(config))
        self.run_dir = self.home / "run"
        self.run_dir.mkdir(mode=0o700)
        self.procs: list[asyncio.subprocess.Process] = []

    async def spawn(self, module: str, *args: str) -> asyncio.subprocess.Process:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENAI_", "OLLAMA_", "ROSEY_"))}
        env["PYTHONPATH"] = str(ROOT)
        log = open(self.home / f"{module.rsplit('.', 1)[1]}{''.join(args[-1:])}.log", "wb")  # noqa: SIM115
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, "--config", str(self.config), *args,
            stdout=log, stderr=log, env=env, cwd=self.home)
        log.close()
        self.procs.append(proc)
        return proc

    def router_metric(self, name: str) -> float:
        """A sample of the router's /metrics, ``name`` with its labels as exposed (e.g.
        ``rosey_endpoint_up{endpoint="gpu1"}``); -1 when the router does not answer."""
        url = f"http://127.0.0.1:{self.metrics['router_port']}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                body = resp.read().decode()
        except OSError:
            return -1.0
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


class PlayedConn:
    """This script as conn on ``ipc://RUN/conn``: mentions up, every Say acknowledged."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.ctx = zmq.asyncio.Context()
        self.sock: zmq.asyncio.Socket | None = None

    async def start(self, callers: int) -> None:
        """Start the router and ``callers`` callers; connect once they are all up."""
        await self.dep.spawn("procs.router")
        for n in range(callers):
            await self.dep.spawn("procs.caller", "--index", str(n))
        deadline = time.monotonic() + 60
        while self.dep.router_metric("rosey_router_callers_alive") < callers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"callers did not come up; see {self.dep.home}")
            await asyncio.sleep(0.2)
        # Connected only now that the router has bound: a DEALER that connected to a
        # missing ipc path retries on a back-off (up to 1 s) that would be timed too.
        self.sock = ipc.dealer_socket(self.ctx, ipc.endpoint(str(self.dep.run_dir), "conn"),
                                      f"conn:{CHANNEL}")
        await self.sock.send(encode(ConnState(channel=CHANNEL, state="joined", bot_name=BOT,
                                              bot_rank=2)))

    async def mention(self, user: str, text: str = "question") -> None:
        assert self.sock is not None
        now = time.time()
        await self.sock.send(encode(Chat(channel=CHANNEL, username=user,
                                         text=f"{BOT}, {text}", time=int(now * 1000),
                                         received_at=now)))

    async def reply(self, timeout: float) -> Say:
        """The next Say (acknowledged as delivered); raises when none comes in time."""
        assert self.sock is not None
        while True:
            if not await self.sock.poll(int(timeout * 1000)):
                raise RuntimeError(f"no reply within {timeout:g} s; see {self.dep.home}")
            msg = decode(await self.sock.recv())
            if isinstance(msg, Say):
                await self.sock.send(encode(Delivered(channel=CHANNEL, say_id=msg.id, ok=True,
                                                      parts=1)))
                return msg

    async def close(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
        self.ctx.term()
        if os.environ.get("BENCH_LOG"):
            for log in sorted(self.dep.home.glob("*.log")):
                print(f"== {log.name}\n{log.read_text()[-3000:]}")
        await self.dep.close()


async def throughput(callers: int, slots: int, latency: float, rounds: int) -> dict[str, float]:
    async with FakeLLM("ollama", models=["m"], reply="ok") as llm:
        llm.delay = latency
        dep = Deployment({"provider": "ollama", "model": "m", "ollama_host": llm.url},
                         callers, slots)
        conn = PlayedConn(dep)
        try:
            await conn.start(callers)
            mentions = callers * slots * rounds
            started = time.perf_counter()
            for n in range(mentions):
                await conn.mention(f"u{n}", f"question {n}")
            for _ in range(mentions):
                await conn.reply(latency * rounds + 30)
            elapsed = time.perf_counter() - started
            rss = max(rss_mib(p.pid) for p in dep.procs[1:])
        finally:
            await conn.close()
    rate = mentions / elapsed
    ideal = callers * slots / latency
    return {"mentions": mentions, "elapsed": elapsed, "rate": rate, "ideal": ideal,
            "ratio": rate / ideal, "calls": llm.calls, "rss": rss}


async def added_latency(provider: Kind, requests: int) -> dict[str, float]:
    async with FakeLLM(provider, reply="ok") as llm:
        model = llm.models[0]
        llm_cfg: dict[str, Any] = {"provider": provider, "model": model}
        if provider == "openai":
            llm_cfg["openai_api_key"] = "sk-bench"
        dep = Deployment(llm_cfg, 1, 4)
        cfg = json.loads(dep.config.read_text())
        cfg["providers"] = ({"openai": {"base_url": llm.url}} if provider == "openai"
                            else {})
        if provider == "ollama":
            cfg["llm"]["ollama_host"] = llm.url
        dep.config.write_text(json.dumps(cfg))
        ctx = zmq.asyncio.Context()
        work = ipc.router_socket(ctx, ipc.endpoint(str(dep.run_dir), "work"))
        delays: list[float] = []
        try:
            caller = await dep.spawn("procs.caller", "--index", "0")
            identity = b""
            while True:  # wait for Ready (heartbeats may come first after a slow start)
                frames = await asyncio.wait_for(work.recv_multipart(), 60)
                if isinstance(decode(frames[1]), Ready):
                    identity = frames[0]
                    break
            for n in range(requests + 20):
                sent = time.time()
                await work.send_multipart([identity, encode(Request(
                    id=f"r{n}", deadline=sent + 30, provider=provider, model=model,
                    turns=[Turn("user", f"u: question {n}")]))])
                while True:
                    frames = await asyncio.wait_for(work.recv_multipart(), 30)
                    msg = decode(frames[1])
                    if isinstance(msg, Result) and msg.id == f"r{n}":
                        break
                if n >= 20:  # the first calls warm the connection pool and the SDK up
                    delays.append(llm.received_at[-1] - sent)
            rss = rss_mib(caller.pid)
        finally:
            work.close(linger=0)
            ctx.term()
            await dep.close()
    return {"p50": pct(delays, 50) * 1000, "p99": pct(delays, 99) * 1000, "rss": rss}


async def main(args: argparse.Namespace) -> None:
    print(f"caller pool throughput, fake model latency {args.latency:g} s, "
          f"{args.rounds} rounds of callers x slots mentions at once")
    print(f"{'callers':>7} {'slots':>5} {'mentions':>8} {'replies/s':>10} {'ideal':>7} "
          f"{'ratio':>6} {'caller RSS':>10}")
    for callers in args.sizes:
        for slots in args.slots:
            row = await throughput(callers, slots, args.latency, args.rounds)
            print(f"{callers:>7} {slots:>5} {row['mentions']:>8.0f} {row['rate']:>10.2f} "
                  f"{row['ideal']:>7.1f} {row['ratio']:>6.2f} {row['rss']:>7.1f} MiB",
                  flush=True)
    providers: list[Kind] = ["ollama", "openai"]
    for provider in providers:
        lat = await added_latency(provider, args.requests)
        print(f"caller added latency ({provider} SDK), request received -> provider HTTP "
              f"request: p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms; caller RSS "
              f"{lat['rss']:.1f} MiB", flush=True)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sizes", type=_ints, default=[1, 2, 4])
    parser.add_argument("--slots", type=_ints, default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
