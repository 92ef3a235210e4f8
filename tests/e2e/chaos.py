"""Helpers for the chaos test: supervisord's processes, the router's journal, the tally.

Real processes only: pids and states come from supervisord's own XML-RPC socket, and which
mentions the router accepted from its SQLite journal (a mention is *accepted* once its
journal row exists; one said while no conn was connected, or lost before the router wrote
it, was never accepted and must simply not be answered twice).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import statistics
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from rosey.protocol import DecodeError, Request, decode
from tests.e2e.harness import Rosey

MENTION = re.compile(r"rosey, q(\d+)-(u\d+)\b")


class Supervisor:
    """supervisord's process table over its unix socket (no CLI start-up per look)."""

    def __init__(self, rosey: Rosey) -> None:
        sock = f"unix://{rosey.run_dir / 'supervisor.sock'}"
        self.proxy: Any = xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, sock))

    def running(self) -> dict[str, int]:
        """Program name -> pid of every RUNNING process (callers as caller-N)."""
        try:
            infos = self.proxy.supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error):
            return {}
        return {i["name"]: int(i["pid"]) for i in infos if i["statename"] == "RUNNING"}

    def kill(self, names: list[str]) -> list[int]:
        table = self.running()
        pids = [table[n] for n in names if n in table]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids


def journaled(database: Path) -> set[tuple[int, str]]:
    """(round, user) of every mention the router journaled (accepted)."""
    if not database.exists():
        return set()
    found: set[tuple[int, str]] = set()
    try:
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=2)
        try:
            rows = db.execute("SELECT request FROM journal").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return found
    for (blob,) in rows:
        try:
            request = decode(blob)
        except DecodeError:
            continue
        if isinstance(request, Request):
            for turn in request.turns:
                if turn.role == "user" and (m := MENTION.search(turn.content)):
                    found.add((int(m.group(1)), m.group(2)))
    return found


@dataclass
class Tally:
    seed: int
    rounds: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    said: dict[tuple[int, str], float] = field(default_factory=dict)  # -> time said
    recoveries: list[float] = field(default_factory=list)
    excess: dict[tuple[int, str], float] = field(default_factory=dict)
    plan: list[tuple[str, str, float]] = field(default_factory=list)  # (target, mode, at)

    def waits_after(self, target: str) -> list[float]:
        """Every mention's wait beyond the model in the rounds that killed ``target``."""
        rounds = {rnd for rnd, (kind, _, _) in enumerate(self.plan) if kind == target}
        return [v for (r, _), v in self.excess.items() if r in rounds]

    def by_kind(self) -> str:
        worst = {kind: max(self.waits_after(kind), default=0.0)
                 for kind in sorted(self.kills)}
        return " ".join(f"{kind}={w:.2f}s" for kind, w in worst.items())

    def rounds_report(self) -> str:
        """One line per round: what was killed when, and the slowest wait beyond the model."""
        lines = []
        for rnd, (target, mode, at) in enumerate(self.plan):
            waits = [v for (r, _), v in self.excess.items() if r == rnd]
            said = [t for (r, _), t in self.said.items() if r == rnd]
            lines.append(f"  round {rnd}: kill {target} ({mode}) "
                         f"{at - min(said, default=at):+.2f}s after the first mention; "
                         f"worst wait beyond the model {max(waits, default=0):.2f}s")
        return "\n".join(lines)

    def replies(self, bot_lines: list[dict[str, Any]]) -> dict[tuple[int, str], list[float]]:
        """(round, user) -> the times (s) of every bot line answering that mention."""
        out: dict[tuple[int, str], list[float]] = {}
        for line in bot_lines:
            if m := MENTION.search(line["msg"]):
                out.setdefault((int(m.group(1)), m.group(2)), []).append(line["time"] / 1000)
        return out

    def report(self, accepted: set[tuple[int, str]],
               replies: dict[tuple[int, str], list[float]]) -> str:
        lost = sorted(accepted - replies.keys())
        doubled = sorted(k for k, times in replies.items() if len(times) > 1)
        rec = sorted(self.recoveries)
        worst = max(self.excess.values(), default=0.0)
        return (f"chaos seed={self.seed} (replay: ROSEY_CHAOS_SEED={self.seed}) "
                f"rounds={self.rounds} kills={dict(sorted(self.kills.items()))} "
                f"mentions={len(self.said)} accepted={len(accepted)} "
                f"answered={len(replies)} lost={len(lost)} {lost[:5]} "
                f"duplicates={len(doubled)} {doubled[:5]} "
                f"recovery p50={statistics.median(rec) if rec else 0:.2f}s "
                f"max={max(rec, default=0):.2f}s (n={len(rec)}) "
                f"worst wait beyond the model={worst:.2f}s ({self.by_kind()})")
