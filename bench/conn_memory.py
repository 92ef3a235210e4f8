"""Resident memory of the conn process by number of channels (one session each).

    python -m bench.conn_memory [--channels 1 20]

For each count N: the fake CyTube serves N channels on one server (one account, two users
chatting in each), the real conn process (``python -m rosey.procs.conn``) joins them all,
a ROUTER socket here takes what it forwards; once every channel has seen the bot and a few
lines of chat, conn's RSS and PSS are read from /proc. Prints MiB per count and the cost of
each added channel (the target: at most 10 MiB per added channel for the deployment).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import zmq
import zmq.asyncio

from bench.util import pss_mib, rss_mib
from fakes.cytube import FakeCytube
from rosey import ipc

BOT, PW = "roseybot", "roseybot-pw"
LINES = 5  # chat lines per channel before measuring


async def measure(count: int) -> tuple[float, float]:
    home = Path(tempfile.mkdtemp(prefix="bench-conn-", dir="/tmp"))
    names = [f"chan{n:02d}" for n in range(count)]
    async with FakeCytube(names[0]) as fake:
        fake.add_account(BOT, PW, rank=2)
        chans = [fake.channel_named(name) for name in names]
        for chan in chans:
            chan.add_virtual_user("alice", rank=1)
        config = {"domain": fake.url, "user": [BOT, PW],
                  "channels": [{"channel": name} for name in names],
                  "metrics": {"enabled": False}, "log": {"level": "WARNING"},
                  "paths": {"run_dir": str(home / "run"), "data_dir": str(home)}}
        (home / "run").mkdir()
        (home / "config.json").write_text(json.dumps(config))
        ctx = zmq.asyncio.Context()
        router = ipc.router_socket(ctx, ipc.endpoint(str(home / "run"), "conn"))
        received = 0

        async def drain() -> None:
            nonlocal received
            while True:
                await router.recv_multipart()
                received += 1

        task = asyncio.create_task(drain())
        # Popen only forks and execs (no wait): nothing on the loop blocks for long
        proc = subprocess.Popen([sys.executable, "-m", "rosey.procs.conn", "--config",  # noqa: ASYNC220
                                 str(home / "config.json")], env=dict(os.environ))
        try:
            for chan in chans:
                await chan.wait_for(lambda chan=chan: BOT in chan.usernames, 60)  # type: ignore[misc]
            for n in range(LINES):
                for chan in chans:
                    await chan.say_as("alice", f"line {n} in {chan.channel}")
            await asyncio.sleep(2.0)  # every line through, the loops settled
            assert proc.poll() is None, "conn exited"
            assert received >= count * LINES, f"router got {received} messages"
            return rss_mib(proc.pid), pss_mib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            task.cancel()
            router.close(0)
            ctx.term()
            shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, nargs="+", default=[1, 20])
    args = parser.parse_args()
    rows = [(count, *asyncio.run(measure(count))) for count in args.channels]
    first_count, first_rss, _ = rows[0]
    print("channels  conn RSS MiB  PSS MiB  RSS per added channel")
    for count, rss, pss in rows:
        added = count - first_count
        per = f"{(rss - first_rss) / added:.2f} MiB" if added else "-"
        print(f"{count:8d}  {rss:12.1f}  {pss:7.1f}  {per}")


if __name__ == "__main__":
    main()
