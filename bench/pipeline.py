"""Where a mention's time goes: latency with an instant model, and each process's CPU.

    python -m bench.pipeline [--mentions 200] [--spacing 0.15] [--profile DIR]

The real Rosey under supervisord against the fake CyTube server and a fake Ollama that
answers at once.  Prints mention → reply p50 / p90 / p99 (the fake server's chat echo of
the reply, as a user sees it) and the CPU time each process spent per mention (all its
threads, from /proc/PID/task/*/schedstat, in microseconds), the fake server and this
client included.  ``--profile DIR`` also runs cProfile in every Rosey process during the
mentions only (bench/profiling/sitecustomize.py) and prints each one's top functions,
per mention.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from bench.memory import children, role
from bench.util import pct
from fakes.cytube import FakeCytube
from fakes.deployment import BOT, BOT_PW, Rosey, bot_lines, wait_joined
from fakes.llm import FakeLLM

IDLE_WINDOW = 5.0


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, nanoseconds (0 when gone)."""
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[0])
    return total


def thread_cpu_ns(pid: int) -> dict[str, int]:
    """CPU so far of each thread of ``pid`` by thread name (same names summed)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
                name = "other threads" if name.startswith("python") else name
                out[name] = out.get(name, 0) + int((task / "schedstat").read_text().split()[0])
    return out


def rosey_processes(root: int) -> dict[str, int]:
    return {role(pid): pid for pid in children(root)}


async def run(mentions: int, spacing: float, profile: Path | None) -> None:
    fake = FakeCytube("benchchan")
    await fake.start()
    fake.add_account(BOT, BOT_PW, rank=2)
    users = [f"user{n}" for n in range(5)]
    for user in users:
        fake.add_virtual_user(user, rank=1)
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.reply = lambda body: "pong"
        rosey = Rosey(fake, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                             "llm_cooldown": 0}, log={"level": "WARNING"})
        rosey.start()
        assert rosey.proc is not None
        try:
            await wait_joined(fake, rosey)
            await asyncio.sleep(2.0)  # callers up and warm
            for n in range(5):  # warm every path once
                await mention(fake, users[n], f"rosey warm {n}")
            procs = rosey_processes(rosey.proc.pid)
            procs["fake server + client"] = os.getpid()
            start = {name: cpu_ns(pid) for name, pid in procs.items()}
            await asyncio.sleep(IDLE_WINDOW)  # the background work (ticks, heartbeats, ...)
            idle = {name: (cpu_ns(pid) - start[name]) / IDLE_WINDOW * spacing / 1000
                    for name, pid in procs.items()}
            if profile is not None:
                signal_all(procs, signal.SIGUSR1)
            before = {name: cpu_ns(pid) for name, pid in procs.items()}
            threads = {name: thread_cpu_ns(pid) for name, pid in procs.items()}
            latencies = []
            for n in range(mentions):
                await asyncio.sleep(spacing)
                latencies.append(await mention(fake, users[n % 5], f"rosey ping {n}") * 1000)
            used = {name: (cpu_ns(pid) - before[name]) / mentions / 1000
                    for name, pid in procs.items()}
            by_thread = {name: {thread: (ns - threads[name].get(thread, 0)) / mentions / 1000
                                for thread, ns in thread_cpu_ns(pid).items()}
                         for name, pid in procs.items()}
            if profile is not None:
                signal_all(procs, signal.SIGUSR2)
                await asyncio.sleep(1.0)
        finally:
            await rosey.stop()
            rosey.cleanup()
            await fake.stop()
    print(f"mention → reply, instant model, {mentions} mentions {spacing * 1000:.0f} ms apart: "
          f"p50 {pct(latencies, 50):.2f} ms  p90 {pct(latencies, 90):.2f} ms  "
          f"p99 {pct(latencies, 99):.2f} ms  mean {statistics.mean(latencies):.2f} ms")
    print(f"CPU per mention, µs (all threads; in brackets: the same time of idling, "
          f"{spacing * 1000:.0f} ms, costs):")
    for name, us in used.items():
        split = ", ".join(f"{thread} {t:.0f}" for thread, t in sorted(
            by_thread[name].items(), key=lambda kv: -kv[1]) if t >= 1)
        print(f"  {name:<22} {us:7.0f}  ({idle[name]:.0f} idle, {us - idle[name]:.0f} for the "
              f"mention; by thread: {split})")
    ours = [name for name in used if name != "fake server + client"]
    print(f"  {'Rosey together':<22} {sum(used[n] for n in ours):7.0f}  "
          f"({sum(idle[n] for n in ours):.0f} idle, "
          f"{sum(used[n] - idle[n] for n in ours):.0f} for the mention)")
    if profile is not None:
        print_profiles(profile, mentions)


async def mention(fake: FakeCytube, user: str, text: str) -> float:
    before = len(bot_lines(fake))
    start = time.perf_counter()
    await fake.say_as(user, text)
    await fake.wait_for(lambda: len(bot_lines(fake)) > before, timeout=10)
    return time.perf_counter() - start


def enable_profiling(folder: Path, profile: bool = True) -> None:
    """Before ``rosey run``: every process it starts loads bench/profiling/sitecustomize."""
    folder.mkdir(parents=True, exist_ok=True)
    hook = str(Path(__file__).parent / "profiling")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (hook, os.environ.get("PYTHONPATH", "")) if p)
    if profile:
        os.environ["BENCH_PROFILE_DIR"] = str(folder)


def signal_all(procs: dict[str, int], signum: int) -> None:
    for name, pid in procs.items():
        if name.startswith(("conn", "router", "caller", "events")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def print_profiles(folder: Path, mentions: int, top: int = 18) -> None:
    import pstats

    for path in sorted(folder.glob("*.prof")):
        stats = pstats.Stats(str(path))
        total = stats.total_tt  # type: ignore[attr-defined]
        print(f"\n--- {path.stem}: {total / mentions * 1e6:.0f} µs of profiled main-thread "
              f"CPU time per mention (cProfile inflates it); top by own time, µs per mention")
        rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
        for (file, line, func), (_cc, calls, tottime, cumtime, _callers) in rows[:top]:
            where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if line else file
            print(f"{tottime / mentions * 1e6:8.1f} own {cumtime / mentions * 1e6:8.1f} cum "
                  f"{calls / mentions:6.1f} calls  {func}  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=200)
    parser.add_argument("--spacing", type=float, default=0.15)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--uvloop", action="store_true",
                        help="run Rosey's processes on uvloop (an A/B of the event loop; "
                        "pip install uvloop first: it is not a dependency)")
    args = parser.parse_args()
    if args.profile is not None or args.uvloop:
        enable_profiling(args.profile or Path(tempfile.mkdtemp(prefix="bench-")),
                         profile=args.profile is not None)
    if args.uvloop:
        os.environ["BENCH_UVLOOP"] = "1"
    asyncio.run(run(args.mentions, args.spacing, args.profile))


if __name__ == "__main__":
    main()
