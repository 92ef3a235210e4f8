"""The supervisord event listener: process states, starts and exits as metrics.

A process that crash-loops between two scrapes is invisible to ``up`` and
``process_start_time_seconds``; supervisord itself sees every transition, so this
listener (``[eventlistener:events]``, subscribed to ``PROCESS_STATE`` and ``TICK_60``)
counts them and serves them on ``metrics.events_port``.  It also writes the Prometheus
``file_sd`` list of callers (``<run_dir>/callers.json``): the callers supervisord is
running or trying to run; a caller stopped by ``rosey scale`` leaves the list.

The protocol (supervisor's "event listener notification protocol", ``childutils``):
write ``READY\\n``; read one header line (``ver:3.0 server:supervisor serial:21
pool:events poolserial:10 eventname:PROCESS_STATE_RUNNING len:58``); read exactly ``len``
bytes of payload; answer ``RESULT 2\\nOK``; repeat.  stdout is the protocol channel, so
logs go to stderr only.  Every event is answered OK, even one that could not be handled:
``FAIL`` would make supervisord send it again, forever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from supervisor import childutils
from supervisor.states import ProcessStates

from rosey import metrics
from rosey.config import Config

log = logging.getLogger("rosey.events")
STATES: dict[str, int] = {name: code for name, code in vars(ProcessStates).items()
                          if name.isupper() and isinstance(code, int)}
# A caller in one of these states is not meant to run (stopped by `rosey scale`).
NOT_RUNNING = ("STOPPED",)
CALLER_GROUP = "caller"
RPC_TIMEOUT = 5.0


@dataclass(slots=True)
class Event:
    name: str
    headers: dict[str, str]
    body: dict[str, str] = field(default_factory=dict)


def tokens(line: str) -> dict[str, str]:
    """``a:1 b:2`` → ``{"a": "1", "b": "2"}`` (like ``childutils.get_headers``, but a
    token without ``:`` or with a ``:`` in its value does not raise)."""
    out: dict[str, str] = {}
    for token in line.split():
        key, _, value = token.partition(":")
        out[key] = value
    return out


def read_event(stdin: IO[bytes]) -> Event | None:
    """One event from supervisord; None at end of input (supervisord went away)."""
    line = stdin.readline()
    if not line:
        return None
    headers = tokens(line.decode("utf-8", "replace"))
    length = int(headers.get("len", "0"))
    payload = stdin.read(length).decode("utf-8", "replace") if length else ""
    first, _, _rest = payload.partition("\n")
    return Event(headers.get("eventname", "UNKNOWN"), headers, tokens(first))


class Listener:
    def __init__(self, *, callers_file: Path | None = None, host: str = "127.0.0.1",
                 caller_base_port: int = 9470,
                 fetch: Callable[[], list[dict[str, Any]]] | None = None):
        self.callers_file = callers_file
        self.host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        self.caller_base_port = caller_base_port
        self.fetch = fetch
        self.states: dict[tuple[str, str], str] = {}
        self._written: str | None = None

    # ---- state ---------------------------------------------------------

    def set_state(self, program: str, process: str, state: str) -> None:
        if (program, process) not in self.states:
            for expected in ("true", "false"):
                metrics.SUPERVISOR_EXITS.labels(program, process, expected)
            metrics.SUPERVISOR_STARTS.labels(program, process)
        self.states[(program, process)] = state
        metrics.SUPERVISOR_STATE.labels(program, process).set(
            STATES.get(state, ProcessStates.UNKNOWN))

    def handle(self, event: Event) -> None:
        metrics.SUPERVISOR_EVENTS.labels(event.name).inc()
        if event.name.startswith("PROCESS_STATE_"):
            state = event.name.removeprefix("PROCESS_STATE_")
            process = event.body.get("processname", "")
            program = event.body.get("groupname", "") or process
            if not process:
                return
            self.set_state(program, process, state)
            if state == "STARTING":
                metrics.SUPERVISOR_STARTS.labels(program, process).inc()
            elif state == "EXITED":
                expected = "true" if event.body.get("expected") == "1" else "false"
                metrics.SUPERVISOR_EXITS.labels(program, process, expected).inc()
                log.warning("%s exited (expected=%s)", process, expected)
            elif state == "BACKOFF":  # died before startsecs: never an expected exit
                metrics.SUPERVISOR_EXITS.labels(program, process, "false").inc()
                log.warning("%s died while starting", process)
            elif state == "FATAL":
                log.error("%s is FATAL: supervisord gave up restarting it", process)
        elif event.name.startswith("TICK_"):
            self.sync()
        self.write_callers()

    def sync(self) -> None:
        """Read every process's state over supervisord's XML-RPC (at start, and on TICK_60
        so a dropped event heals within a minute).  A failure is logged, never raised."""
        if self.fetch is None:
            return
        try:
            infos = self.fetch()
        except Exception as exc:  # RPC down or slow: the events still arrive
            log.warning("supervisord RPC failed: %s: %s", type(exc).__name__, exc)
            return
        for info in infos:
            self.set_state(str(info.get("group", "")), str(info.get("name", "")),
                           str(info.get("statename", "UNKNOWN")))

    # ---- file_sd ---------------------------------------------------------

    def caller_targets(self) -> list[str]:
        indexes = []
        for (program, process), state in self.states.items():
            if program == CALLER_GROUP and state not in NOT_RUNNING:
                _, _, number = process.rpartition("-")
                if number.isdigit():
                    indexes.append(int(number))
        return [f"{self.host}:{self.caller_base_port + n}" for n in sorted(indexes)]

    def write_callers(self) -> None:
        if self.callers_file is None:
            return
        targets = self.caller_targets()
        text = json.dumps([{"targets": targets, "labels": {"rosey_role": "caller"}}]
                          if targets else [], indent=1) + "\n"
        if text == self._written:
            return
        tmp = self.callers_file.with_suffix(".tmp")
        try:
            tmp.write_text(text)
            os.replace(tmp, self.callers_file)  # Prometheus never reads half a file
        except OSError as exc:
            log.warning("cannot write %s: %s", self.callers_file, exc)
            return
        self._written = text

    # ---- protocol --------------------------------------------------------

    def run(self, stdin: IO[bytes], stdout: IO[str]) -> int:
        """Serve events until supervisord closes stdin; returns the number handled."""
        self.sync()
        self.write_callers()
        handled = 0
        while True:
            childutils.listener.ready(stdout)
            event = read_event(stdin)
            if event is None:
                return handled
            try:
                self.handle(event)
            except Exception:  # one odd event must not kill the listener
                log.exception("could not handle %s", event.name)
            childutils.listener.ok(stdout)
            handled += 1


WAKE_EVERY = 0.2  # s


def wake_supervisord(sock_path: Path, stop: threading.Event) -> None:
    """supervisord restarts a dead process only on the loop pass *after* it reaped it, and
    its loop sleeps up to 1 s in poll() when no fd is busy: a killed router or conn would
    stay down a second for nothing.  A bare connect to its socket wakes the loop, so a
    crashed process is back within WAKE_EVERY s (recovery budget: docs/ARCHITECTURE.md
    "Delivery")."""
    while not stop.wait(WAKE_EVERY):
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(WAKE_EVERY)
            sock.connect(str(sock_path))


def main_loop(cfg: Config, port: int) -> None:
    metrics.CONFIG_RESPONSE_TIMEOUT.set(cfg.llm.response_timeout)
    try:
        metrics.serve("events", cfg.metrics.host, port, cfg.metrics.enabled)
    except OSError as exc:  # keep answering supervisord: a restart loop helps nobody
        log.error("cannot serve metrics on %s:%d: %s", cfg.metrics.host, port, exc)
    fetch = None
    if "SUPERVISOR_SERVER_URL" in os.environ:
        rpc = childutils.getRPCInterface(os.environ)
        socket.setdefaulttimeout(RPC_TIMEOUT)  # after the metrics server socket exists

        def fetch() -> list[dict[str, Any]]:
            return list(rpc.supervisor.getAllProcessInfo())

    listener = Listener(callers_file=Path(cfg.paths.run_dir) / "callers.json",
                        host=cfg.metrics.host, caller_base_port=cfg.metrics.caller_base_port,
                        fetch=fetch)
    stop = threading.Event()
    threading.Thread(target=wake_supervisord, daemon=True, name="wake-supervisord",
                     args=(Path(cfg.paths.run_dir) / "supervisor.sock", stop)).start()
    count = listener.run(sys.stdin.buffer, sys.stdout)
    stop.set()
    log.info("supervisord closed the event stream after %d events", count)
