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

Lean on purpose (~12 MiB RSS instead of 31): standard library only.  No config loading
(``rosey run`` validated the config and passes what is needed as arguments), no
prometheus_client (``rosey.events.exposition``), no ``xmlrpc.client`` (``http.client``
imports ssl): the one RPC it makes is a hand-written XML-RPC POST over supervisord's
Unix socket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
from pathlib import Path
from xml.etree import ElementTree

from supervisor.states import ProcessStates

from rosey.events.exposition import EventMetrics, serve
from rosey.file_modes import atomic_write

TYPE_CHECKING = False  # typing and dataclasses (inspect, ast) cost ~1 MiB; not at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

log = logging.getLogger("rosey.events")
STATES: dict[str, int] = {name: code for name, code in vars(ProcessStates).items()
                          if name.isupper() and isinstance(code, int)}
# A caller in one of these states is not meant to run (stopped by `rosey scale`).
NOT_RUNNING = ("STOPPED",)
CALLER_GROUP = "caller"
RPC_TIMEOUT = 5.0
# rosey.metrics.MEMORY_TARGETS["events"] (a test holds them equal)
MEMORY_TARGET = 20 * 1024 * 1024


class Event:
    __slots__ = ("body", "headers", "name")

    def __init__(self, name: str, headers: dict[str, str], body: dict[str, str] | None = None):
        self.name = name
        self.headers = headers
        self.body = body if body is not None else {}


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
                 fetch: Callable[[], list[dict[str, Any]]] | None = None,
                 metrics: EventMetrics | None = None):
        self.metrics = metrics or EventMetrics()
        self.callers_file = callers_file
        self.host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        self.caller_base_port = caller_base_port
        self.fetch = fetch
        self.states: dict[tuple[str, str], str] = {}
        self._written: str | None = None

    # ---- state ---------------------------------------------------------

    def set_state(self, program: str, process: str, state: str) -> None:
        m = self.metrics
        if (program, process) not in self.states:
            for expected in ("true", "false"):
                m.exits.touch(program, process, expected)
            m.starts.touch(program, process)
        self.states[(program, process)] = state
        m.state.set(program, process, value=STATES.get(state, ProcessStates.UNKNOWN))

    def handle(self, event: Event) -> None:
        with self.metrics.lock:
            self._handle(event)
        self.write_callers()

    def _handle(self, event: Event) -> None:
        m = self.metrics
        m.events.inc(event.name)
        if event.name.startswith("PROCESS_STATE_"):
            state = event.name.removeprefix("PROCESS_STATE_")
            process = event.body.get("processname", "")
            program = event.body.get("groupname", "") or process
            if not process:
                return
            self.set_state(program, process, state)
            if state == "STARTING":
                m.starts.inc(program, process)
            elif state == "EXITED":
                expected = "true" if event.body.get("expected") == "1" else "false"
                m.exits.inc(program, process, expected)
                log.warning("%s exited (expected=%s)", process, expected)
            elif state == "BACKOFF":  # died before startsecs: never an expected exit
                m.exits.inc(program, process, "false")
                log.warning("%s died while starting", process)
            elif state == "FATAL":
                log.error("%s is FATAL: supervisord gave up restarting it", process)
        elif event.name.startswith("TICK_"):
            self._sync()

    def sync(self) -> None:
        with self.metrics.lock:
            self._sync()

    def _sync(self) -> None:
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
        try:  # Prometheus never reads half a file
            atomic_write(self.callers_file, text)
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
            stdout.write("READY\n")
            stdout.flush()
            event = read_event(stdin)
            if event is None:
                return handled
            try:
                self.handle(event)
            except Exception:  # one odd event must not kill the listener
                log.exception("could not handle %s", event.name)
            stdout.write("RESULT 2\nOK")
            stdout.flush()
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



def all_process_info(socket_path: str, timeout: float = RPC_TIMEOUT) -> list[dict[str, str]]:
    """``supervisor.getAllProcessInfo`` over supervisord's Unix socket: each process's
    struct as strings (``name``, ``group``, ``statename``, ...)."""
    body = (b"<?xml version='1.0'?><methodCall><methodName>supervisor.getAllProcessInfo"
            b"</methodName><params></params></methodCall>")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(b"POST /RPC2 HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        chunks = []
        while chunk := sock.recv(65536):  # HTTP/1.0: supervisord closes after the answer
            chunks.append(chunk)
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise OSError(f"supervisord answered {status.decode(errors='replace')!r}")
    root = ElementTree.fromstring(payload)
    if root.find("fault") is not None:
        raise OSError("supervisord fault: " + " ".join(root.find("fault").itertext()))  # type: ignore[union-attr]
    out = []
    for struct in root.iter("struct"):
        info = {}
        for member in struct.findall("member"):
            value = member.find("value")
            info[member.findtext("name") or ""] = "".join(value.itertext()) if value is not \
                None else ""
        out.append(info)
    return out


def main_loop(*, run_dir: str, host: str, port: int, caller_base_port: int, enabled: bool,
              response_timeout: float, version: str) -> None:
    metrics = EventMetrics()
    metrics.response_timeout.set(value=response_timeout)
    metrics.build_info.set(version, "events", value=1)
    metrics.memory_target.set("events", value=MEMORY_TARGET)
    if enabled:
        try:
            serve(metrics, host, port)
        except OSError as exc:  # keep answering supervisord: a restart loop helps nobody
            log.error("cannot serve metrics on %s:%d: %s", host, port, exc)
    fetch = None
    url = os.environ.get("SUPERVISOR_SERVER_URL", "")
    if url.startswith("unix://"):
        path = url.removeprefix("unix://")

        def fetch() -> list[dict[str, Any]]:
            return list(all_process_info(path))

    listener = Listener(callers_file=Path(run_dir) / "callers.json", host=host,
                        caller_base_port=caller_base_port, fetch=fetch, metrics=metrics)
    stop = threading.Event()
    threading.Thread(target=wake_supervisord, daemon=True, name="wake-supervisord",
                     args=(Path(run_dir) / "supervisor.sock", stop)).start()
    count = listener.run(sys.stdin.buffer, sys.stdout)
    stop.set()
    log.info("supervisord closed the event stream after %d events", count)
