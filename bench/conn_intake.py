"""conn's intake throughput against a bare python-socketio client, on this machine.

    python -m bench.conn_intake [--frames 20000] [--runs 3]

A blaster (its own process) plays a minimal CyTube: socketconfig, ``rank``, ``login``,
``userlist``, then N live ``chatMsg`` frames (HTML-escaped, with a filter tag, as the server
sends them) as fast as it can. Two clients read them, each in its own process:

* raw: a python-socketio AsyncClient whose catch-all handler only counts frames;
* conn: the real ``ConnService`` — parse, replay filter, HTML reversal, ``Chat`` encode — and
  the frames counted where the router would get them (a ZeroMQ ROUTER in this process).

Prints frames/s of each (first to last frame) and conn's share of raw (target >= 50 %).
Wall time is measured here and only here; tests use virtual clocks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import shutil
import socket
import statistics
import tempfile
import time
from typing import Any

import socketio
import zmq
from aiohttp import web

CHANNEL, BOT, PW = "benchchan", "roseybot", "pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- the blaster (a process) -------------------------------------------------------------------


def blaster(port: int, frames: int) -> None:
    async def main() -> None:
        sio = socketio.AsyncServer(async_mode="aiohttp")
        app = web.Application()
        sio.attach(app)
        base = int(time.time() * 1000)
        payloads = [{"username": "alice", "msg": f"rosey, question number {n} &amp; "
                     f"<em>more</em> (parens)", "meta": {}, "time": base + n}
                    for n in range(frames)]

        async def socketconfig(request: web.Request) -> web.Response:
            return web.json_response({"servers": [{"url": f"http://127.0.0.1:{port}",
                                                   "secure": False}]})

        async def on_connect(sid: str, environ: Any, auth: Any = None) -> None:
            await sio.emit("rank", -1, to=sid)

        async def on_join(sid: str, data: Any) -> None:
            await sio.emit("userlist", [], to=sid)

        async def on_login(sid: str, data: Any) -> None:
            await sio.emit("rank", 2, to=sid)
            await sio.emit("login", {"success": True, "name": data["name"]}, to=sid)
            await asyncio.sleep(0.5)  # let the client settle before the stream starts
            for payload in payloads:
                await sio.emit("chatMsg", payload, to=sid)

        app.router.add_get("/socketconfig/{name}", socketconfig)
        sio.on("connect", on_connect)
        sio.on("joinChannel", on_join)
        sio.on("login", on_login)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


# ---- the raw client (a process) --------------------------------------------------------------


def raw_client(port: int, frames: int, out: Any) -> None:
    async def main() -> None:
        stamps: list[float] = []
        done = asyncio.Event()
        sio = socketio.AsyncClient(reconnection=False)

        async def on_any(event: str, *args: Any) -> None:
            if event == "chatMsg":
                stamps.append(time.perf_counter())
                if len(stamps) == frames:
                    done.set()

        sio.on("*", on_any)
        await sio.connect(f"http://127.0.0.1:{port}", transports=["websocket"],
                          wait_timeout=10)
        await sio.emit("joinChannel", {"name": CHANNEL})
        await sio.emit("login", {"name": BOT, "pw": PW})
        await asyncio.wait_for(done.wait(), timeout=300)
        await sio.disconnect()
        out.send((frames - 1) / (stamps[-1] - stamps[0]))

    asyncio.run(main())


# ---- conn (a process) and the router's end (here) ----------------------------------------------


def conn_process(port: int, run_dir: str) -> None:
    import logging

    from rosey.config_schema import Config, Conn, Metrics, Paths
    from rosey.conn.service import ConnService

    logging.basicConfig(level=logging.WARNING)
    cfg = Config(domain=f"http://127.0.0.1:{port}", channel=CHANNEL, user=[BOT, PW],
                 conn=Conn(message_length=320), paths=Paths(run_dir=run_dir),
                 metrics=Metrics(enabled=False))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(ConnService(cfg).run())


def conn_rate(port: int, frames: int) -> float:
    from rosey import ipc
    from rosey.protocol import Chat, decode

    run_dir = tempfile.mkdtemp(prefix="bench-", dir="/tmp")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(ipc.endpoint(run_dir, "conn"))
    proc = mp.Process(target=conn_process, args=(port, run_dir), daemon=True)
    proc.start()
    stamps: list[float] = []
    sock.setsockopt(zmq.RCVTIMEO, 1000)
    try:
        deadline = time.monotonic() + 300
        while not stamps and time.monotonic() < deadline:  # conn_state frames come first
            with contextlib.suppress(zmq.Again):
                if isinstance(decode(sock.recv_multipart()[1]), Chat):
                    stamps.append(time.perf_counter())
        # then only count, so that this process takes as little CPU from the two others
        # (blaster and conn) as the raw client's measurement does; the last one is checked
        while len(stamps) < frames and time.monotonic() < deadline:
            with contextlib.suppress(zmq.Again):
                last = sock.recv_multipart(copy=False)[1]
                stamps.append(time.perf_counter())
        if len(stamps) == frames and not isinstance(decode(last.bytes), Chat):
            raise RuntimeError("the last frame forwarded was not a Chat")
    finally:
        proc.terminate()
        proc.join(5)
        sock.close(0)
        ctx.term()
        shutil.rmtree(run_dir, ignore_errors=True)
    if len(stamps) < frames:
        raise RuntimeError(f"conn forwarded only {len(stamps)} of {frames} frames")
    return (frames - 1) / (stamps[-1] - stamps[0])


def one_run(frames: int) -> tuple[float, float]:
    rates = []
    for kind in ("raw", "conn"):
        port = free_port()
        server = mp.Process(target=blaster, args=(port, frames), daemon=True)
        server.start()
        time.sleep(0.8)
        try:
            if kind == "raw":
                recv, send = mp.Pipe(duplex=False)
                client = mp.Process(target=raw_client, args=(port, frames, send), daemon=True)
                client.start()
                rates.append(recv.recv())
                client.join(10)
            else:
                rates.append(conn_rate(port, frames))
        finally:
            server.terminate()
            server.join(5)
    return rates[0], rates[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    raws, conns, ratios = [], [], []
    for _ in range(args.runs):  # pairs back to back: the machine's load changes slowly
        raw, conn = one_run(args.frames)
        raws.append(raw)
        conns.append(conn)
        ratios.append(conn / raw)
    raw, conn = statistics.median(raws), statistics.median(conns)
    print(f"conn intake: {conn:,.0f} frames/s parsed and forwarded to the router "
          f"(raw python-socketio client: {raw:,.0f} frames/s); conn/raw per run "
          f"{', '.join(f'{100 * r:.0f} %' for r in ratios)}, median "
          f"{100 * statistics.median(ratios):.0f} % (target >= 50 %); {args.frames} chatMsg")

if __name__ == "__main__":
    main()
