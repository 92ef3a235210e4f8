"""Sizing the caller pool at run time: ``rosey scale N`` and ``rosey run``'s start-up.

The pool is declared to supervisord at ``callers.max`` members, all ``autostart=false``;
scaling starts and stops members by name over supervisord's XML-RPC socket and never
touches the others (a ``numprocs`` change + ``update`` would restart every member:
docs/DECISIONS.md).  Stops are issued without waiting, so several draining callers finish their
in-flight calls in parallel rather than one after another, each within ``stopwaitsecs``.

The size persists in ``RUN/callers.scale`` (``{"count": N, "config_count": C}``, replaced
atomically): the next ``rosey run`` starts N callers, unless ``callers.count`` has been
edited since (C differs): then the config, the newer decision, wins.

The Prometheus ``file_sd`` list ``RUN/callers.json`` is not written here: supervisord's
event listener (``rosey.events.listener``) rewrites it on every process state change,
so it follows ``rosey scale``, crashes and restarts alike.
"""

from __future__ import annotations

import json
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosey.config import Config
from rosey.file_modes import atomic_write

STATE_FILE = "callers.scale"
TARGETS_FILE = "callers.json"
GROUP = "caller"
UP_STATES = frozenset({"RUNNING", "STARTING", "BACKOFF"})
DOWN_STATES = frozenset({"STOPPED", "EXITED", "FATAL", "UNKNOWN"})


def member(index: int) -> str:
    return f"{GROUP}:{GROUP}-{index}"


def desired_count(cfg: Config) -> int:
    """How many callers ``rosey run`` starts: the scaled count, or ``callers.count``."""
    path = Path(cfg.paths.run_dir) / STATE_FILE
    try:
        state = json.loads(path.read_text())
        count, config_count = int(state["count"]), int(state["config_count"])
    except (OSError, ValueError, KeyError, TypeError):
        return cfg.callers.count
    if config_count != cfg.callers.count:
        return cfg.callers.count
    return max(0, min(count, cfg.callers.max))


def save_count(cfg: Config, count: int) -> None:
    atomic_write(Path(cfg.paths.run_dir) / STATE_FILE,
                 json.dumps({"count": count, "config_count": cfg.callers.count}) + "\n",
                 durable=True)


def plan(states: dict[int, str], count: int) -> tuple[list[int], list[int]]:
    """Members to start and to stop so that exactly 0..count-1 run.  Pure."""
    start = [n for n, state in sorted(states.items()) if n < count and state not in UP_STATES]
    stop = [n for n, state in sorted(states.items())
            if n >= count and state not in DOWN_STATES and state != "STOPPING"]
    return start, stop


def supervisor(cfg: Config) -> Any:
    """An XML-RPC proxy to this deployment's supervisord (its Unix socket)."""
    from supervisor.xmlrpc import SupervisorTransport

    url = f"unix://{Path(cfg.paths.run_dir) / 'supervisor.sock'}"
    return xmlrpc.client.ServerProxy("http://127.0.0.1",
                                     transport=SupervisorTransport(None, None, url))


def caller_states(proxy: Any) -> dict[int, str]:
    states = {}
    for info in proxy.supervisor.getAllProcessInfo():
        if info["group"] == GROUP:
            states[int(info["name"].rsplit("-", 1)[1])] = str(info["statename"])
    return states


@dataclass
class ScaleReport:
    started: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    settled: bool = True
    states: dict[int, str] = field(default_factory=dict)


def scale(proxy: Any, count: int, *, wait: float,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> ScaleReport:
    """Start / stop members without waiting on each, then wait up to ``wait`` s for all."""
    report = ScaleReport()
    report.started, report.stopped = plan(caller_states(proxy), count)
    for n in report.stopped:  # stops first: their drain takes longest
        try:
            proxy.supervisor.stopProcess(member(n), False)
        except xmlrpc.client.Fault as fault:
            report.errors.append(f"stop {member(n)}: {fault.faultString}")
    for n in report.started:
        try:
            proxy.supervisor.startProcess(member(n), False)
        except xmlrpc.client.Fault as fault:
            report.errors.append(f"start {member(n)}: {fault.faultString}")
    until = clock() + wait
    while True:
        report.states = caller_states(proxy)
        pending = [n for n in report.started if report.states.get(n) != "RUNNING"]
        pending += [n for n in report.stopped if report.states.get(n) not in DOWN_STATES]
        if not pending:
            report.settled = True
            return report
        if clock() >= until:
            report.settled = False
            return report
        sleep(0.2)
