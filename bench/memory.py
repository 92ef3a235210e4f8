"""Resident memory of the default deployment, process by process.

    python -m bench.memory [--mentions 20] [--provider ollama|openai]

Starts ``rosey run`` (the real supervisord, conn, router, ``callers.count`` callers and
the event listener) with the default config against the fake CyTube server and a fake
provider, answers a few mentions so every process has done its work once, then prints
the RSS (and PSS: shared pages split between the processes that map them) of every
process in the tree that ``rosey run`` started, and the totals.  ``make run`` adds make
itself (~2 MiB), which this does not start.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Literal

from bench.util import pss_mib, rss_mib
from fakes.cytube import FakeCytube
from fakes.deployment import BOT, BOT_PW, Rosey, bot_lines, wait_joined
from fakes.llm import FakeLLM
from rosey.config_schema import Callers, Log


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), parents before children."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        out.append(current)
        todo.extend(sorted(parents.get(current, [])))
    return out


def role(pid: int) -> str:
    """What a process of the tree is, from its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "gone"
    joined = " ".join(argv)
    if "supervisord" in joined:
        return "supervisord"
    for proc in ("conn", "router", "events"):
        if f"procs.{proc}" in joined:
            return proc
    if "procs.caller" in joined:
        return f"caller-{argv[argv.index('--index') + 1]}"
    if "rosey.cli.main" in joined or Path(argv[0]).name == "rosey":
        return "rosey run (relay)"
    return Path(argv[0]).name or "?"


def table(root: int) -> list[tuple[str, int, float, float]]:
    return [(role(pid), pid, rss_mib(pid), pss_mib(pid)) for pid in children(root)]


Row = tuple[str, int, float, float]


async def measure(provider: Literal["ollama", "openai"], mentions: int) -> list[Row]:
    fake = FakeCytube("benchchan")
    await fake.start()
    fake.add_account(BOT, BOT_PW, rank=2)
    fake.add_virtual_user("alice", rank=1)
    async with FakeLLM(provider, models=["m"]) as llm:
        llm.reply = lambda body: "pong"
        where = {"ollama_host": llm.url} if provider == "ollama" else {}
        overrides = {} if provider == "ollama" else {
            "providers": {"openai": {"base_url": llm.url + "/v1"}}}
        count = Callers().count  # the defaults, as `make run` has them
        rosey = Rosey(fake, {"provider": provider, "model": "m", "llm_cooldown": 0,
                             "openai_api_key": "sk-bench", **where},
                      callers={"count": count, "max": Callers().max},
                      log={"level": Log().level}, **overrides)
        rosey.start()
        assert rosey.proc is not None
        try:
            await wait_joined(fake, rosey)
            for n in range(mentions):
                before = len(bot_lines(fake))
                await fake.say_as("alice", f"rosey ping {n}")
                try:
                    await fake.wait_for(lambda b=before: len(bot_lines(fake)) > b,  # type: ignore[misc]
                                        timeout=10)
                except TimeoutError as exc:
                    raise AssertionError(f"no reply to mention {n}:\n"
                                         f"{rosey.logs()[-3000:]}") from exc
            await asyncio.sleep(1.0)  # let every process settle after its last work
            return table(rosey.proc.pid)
        finally:
            await rosey.stop()
            rosey.cleanup()
            await fake.stop()


def report(rows: list[tuple[str, int, float, float]]) -> str:
    lines = [f"{'process':<20} {'pid':>7} {'RSS MiB':>8} {'PSS MiB':>8}"]
    for name, pid, rss, pss in rows:
        lines.append(f"{name:<20} {pid:>7} {rss:>8.1f} {pss:>8.1f}")
    lines.append(f"{'total':<20} {'':>7} {sum(r[2] for r in rows):>8.1f} "
                 f"{sum(r[3] for r in rows):>8.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=20)
    parser.add_argument("--provider", choices=("ollama", "openai"), default="ollama")
    args = parser.parse_args()
    provider: Literal["ollama", "openai"] = args.provider
    rows = asyncio.run(measure(provider, args.mentions))
    print(f"memory of the default deployment ({args.provider}, {len(rows)} processes, "
          f"after {args.mentions} mentions; make run adds make, ~2 MiB):", flush=True)
    print(report(rows))


if __name__ == "__main__":
    main()
