"""Fuzz the running processes: mutated CyTube frames into conn, bad IPC into the router.

The real conn, router and callers under supervisord; the fake CyTube sends the mutated
recorded frames to the bot's socket, and DEALER sockets send bad messages to the router's
three ipc sockets. Afterwards each process has the same PID and the bot still answers a
mention, and every bad input was counted exactly once: in ``rosey_conn_frame_errors_total``
(malformed frame, by event), ``rosey_conn_unknown_events_total`` (event CyTube does not send)
or ``rosey_ipc_decode_errors_total{process="router"}``.

    ROSEY_FUZZ_SEED=11 ROSEY_FUZZ_COUNT=10000 \
        .venv/bin/python -m pytest -s tests/e2e/test_fuzz_inputs.py

The suite runs a smaller count (a few seconds); the seed is printed so a failure replays.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import time
import urllib.request
from collections.abc import AsyncIterator

import pytest
import zmq
import zmq.asyncio

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from rosey import ipc
from rosey.protocol import CtlReply, decode
from rosey.router.service import CONN_UP, CONTROL_UP, WORK_UP
from tests.e2e.harness import BOT, Rosey, bot_lines, deployed, expect_lines
from tests.fuzzing import BadFrame, bad_frames, bad_ipc, odd_ipc

SEED = int(os.environ.get("ROSEY_FUZZ_SEED", "11"))
COUNT = int(os.environ.get("ROSEY_FUZZ_COUNT", "1500"))


def running(rosey: Rosey) -> dict[str, int]:
    """Process name → PID of everything RUNNING, from one ``rosey status``."""
    status = rosey.cli("status").stdout
    found = {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\s+RUNNING\s+pid (\d+)", status,
                                                 re.MULTILINE)}
    assert {"conn", "router", "caller:caller-0", "caller:caller-1"} <= set(found), status
    return found


def samples(port: int, name: str) -> dict[str, float]:
    """Every sample of one metric family on a /metrics page, by its label text."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body = resp.read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        key, _, value = line.rpartition(" ")
        metric, _, labels = key.partition("{")
        if metric == name:
            out[labels.rstrip("}")] = float(value)
    return out


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


async def until_total(port: int, name: str, before: dict[str, float], want: int,
                      timeout: float) -> dict[str, float]:
    """Wait for ``want`` more samples of ``name``; raise with what arrived if they do not."""
    deadline = time.monotonic() + timeout
    while True:
        got = delta(samples(port, name), before)
        if sum(got.values()) >= want or time.monotonic() > deadline:
            assert sum(got.values()) == want, f"{name}: wanted +{want}, got {got}"
            return got
        await asyncio.sleep(0.1)


async def send_frames(cytube: FakeCytube, bad: list[BadFrame]) -> None:
    for frame in bad:
        await cytube.send_raw(BOT, frame.event, frame.data)


@contextlib.asynccontextmanager
async def dealers(run_dir: str) -> AsyncIterator[dict[str, zmq.asyncio.Socket]]:
    """A DEALER on each of the router's sockets, kept open until the test has counted (a
    closed DEALER drops what it has not delivered within its linger)."""
    ctx = zmq.asyncio.Context()
    socks = {name: ipc.dealer_socket(ctx, ipc.endpoint(run_dir, name), f"fuzz-{name}-{SEED}")
             for name in ("conn", "work", "control")}
    try:
        yield socks
    finally:
        for sock in socks.values():
            sock.close(linger=0)
        ctx.term()


@pytest.mark.timeout(240)
async def test_fuzzed_frames_and_ipc_are_counted_once_and_crash_nothing(
        cytube: FakeCytube) -> None:
    print(f"\nfuzz seed {SEED}: {COUNT} CyTube frames + {COUNT} IPC messages "
          "(replay: ROSEY_FUZZ_SEED=… ROSEY_FUZZ_COUNT=…)")
    frames = bad_frames(SEED, COUNT, BOT)
    messages = bad_ipc(SEED, COUNT, {"conn": CONN_UP, "work": WORK_UP, "control": CONTROL_UP})
    odd = odd_ipc(SEED, COUNT // 10)
    verdicts = collections.Counter(f.verdict for f in frames)
    malformed = collections.Counter(f'event="{f.label}"' for f in frames
                                    if f.verdict == "malformed")
    # The fuzz exercises every path: bad shapes, unknown names and harmless valid frames.
    assert min(verdicts["malformed"], verdicts["unknown"], verdicts["valid"]) > COUNT // 20
    async with FakeLLM("ollama", models=["m"]) as llm:
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0}, log={"level": "INFO"})
        conn_port, router_port = rosey.ports["conn"], rosey.ports["router"]
        async with deployed(rosey, cytube):
            await cytube.say_as("alice", "rosey, before the fuzz")
            await expect_lines(cytube, rosey, 1)
            before_pids = running(rosey)
            names = ("rosey_conn_frames_total", "rosey_conn_frame_errors_total",
                     "rosey_conn_unknown_events_total")
            conn_before = {n: samples(conn_port, n) for n in names}
            ipc_before = samples(router_port, "rosey_ipc_decode_errors_total")

            started = time.perf_counter()
            await send_frames(cytube, frames)
            await until_total(conn_port, names[0], conn_before[names[0]], COUNT, 60)
            frame_secs = time.perf_counter() - started
            errors = delta(samples(conn_port, names[1]), conn_before[names[1]])
            assert errors == dict(malformed), "malformed frames counted ≠ once each"
            unknown = delta(samples(conn_port, names[2]), conn_before[names[2]])
            assert unknown == ({"": verdicts["unknown"]} if verdicts["unknown"] else {})

            started = time.perf_counter()
            async with dealers(str(rosey.run_dir)) as socks:
                for msg in messages:
                    await socks[msg.socket].send_multipart(msg.frames)
                got = await until_total(router_port, "rosey_ipc_decode_errors_total",
                                        ipc_before, COUNT, 60)
                assert got == {'process="router"': COUNT}
                # Valid messages with odd values are acted upon, not counted; a bad byte
                # after them on each socket shows they were handled (one loop per socket).
                for msg in odd:
                    await socks[msg.socket].send_multipart(msg.frames)
                for sock in socks.values():
                    await sock.send(b"\xc1")  # never valid msgpack
                await until_total(router_port, "rosey_ipc_decode_errors_total", ipc_before,
                                  COUNT + len(socks), 30)
                asked = sum(msg.socket == "control" for msg in odd)
                assert asked > 0
                replies = [decode(await asyncio.wait_for(socks["control"].recv(), 5))
                           for _ in range(asked)]
                assert all(isinstance(r, CtlReply) and not r.ok for r in replies), replies[:3]
            ipc_secs = time.perf_counter() - started
            print(f"frames: {dict(verdicts)} in {frame_secs:.1f} s; IPC: {COUNT} counted and "
                  f"{len(odd)} odd but valid handled in {ipc_secs:.1f} s")

            # Nothing crashed (same PIDs, no traceback) and the bot still answers.
            await cytube.say_as("bob", "rosey, after the fuzz")
            await expect_lines(cytube, rosey, 2, timeout=15)
            assert bot_lines(cytube)[-1] == "bob: reply to: bob: rosey, after the fuzz"
            assert running(rosey) == before_pids
            logs = rosey.logs()
            assert "Traceback" not in logs, logs[logs.index("Traceback") - 300:][:4000]
