"""The event listener's metrics and /metrics endpoint, with the standard library only.

The listener is the one process whose work is trivial (count supervisord's events), so
it must not cost what a service costs: ``prometheus_client`` pulls in ``http.server``,
``wsgiref``, ``ssl`` and OpenSSL (~12 MiB RSS in a bare interpreter), ``rosey.config``
msgspec.  Here the four ``rosey_supervisor_*`` families, the few every-process series
(build info, memory target, response timeout) and the ``process_*`` series Prometheus
expects are kept in plain dicts and written in the text exposition format.  Names, help,
types and labels are the catalog's (``rosey.metrics``); a unit test holds them equal.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time

COUNTER, GAUGE = "counter", "gauge"


class Family:
    """One metric family: name, help, type, label names and a sample per label tuple."""

    def __init__(self, name: str, doc: str, kind: str, labels: tuple[str, ...] = ()):
        self.name, self.doc, self.kind, self.labels = name, doc, kind, labels
        self.samples: dict[tuple[str, ...], float] = {}

    def touch(self, *values: str) -> None:
        """Create the sample at 0 (so rate() sees the 0 before the first event)."""
        self.samples.setdefault(values, 0.0)

    def inc(self, *values: str, by: float = 1.0) -> None:
        self.samples[values] = self.samples.get(values, 0.0) + by

    def set(self, *values: str, value: float) -> None:
        self.samples[values] = float(value)

    def get(self, *values: str) -> float | None:
        return self.samples.get(values)

    def render(self) -> list[str]:
        doc = self.doc.replace("\\", r"\\").replace("\n", r"\n")
        out = [f"# HELP {self.name} {doc}", f"# TYPE {self.name} {self.kind}"]
        for values, number in sorted(self.samples.items()):
            pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(self.labels, values,
                                                                   strict=True))
            out.append(f"{self.name}{{{pairs}}} {number!r}" if pairs else
                       f"{self.name} {number!r}")
        return out


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


class EventMetrics:
    """Everything the listener exports (see ``rosey.metrics`` for the catalog)."""

    def __init__(self) -> None:
        program = ("program", "process")
        self.state = Family("rosey_supervisor_process_state",
                            "supervisord state code: 0 STOPPED, 10 STARTING, 20 RUNNING, "
                            "30 BACKOFF, 40 STOPPING, 100 EXITED, 200 FATAL, 1000 UNKNOWN",
                            GAUGE, program)
        self.exits = Family("rosey_supervisor_process_exits_total",
                            "Exits supervisord did not ask for (EXITED, or BACKOFF: died while "
                            "starting); expected as supervisord judged the exit code",
                            COUNTER, (*program, "expected"))
        self.starts = Family("rosey_supervisor_process_starts_total",
                             "Times supervisord started the process (restarts + 1)",
                             COUNTER, program)
        self.events = Family("rosey_supervisor_events_total",
                             "supervisord events handled by the listener", COUNTER, ("event",))
        self.response_timeout = Family(
            "rosey_config_response_timeout_seconds",
            "llm.response_timeout, so alerts can relate latency to it", GAUGE)
        self.build_info = Family("rosey_build_info", "Rosey version running in this process",
                                 GAUGE, ("version", "process"))
        self.memory_target = Family(
            "rosey_memory_target_bytes",
            "The resident-memory target of this process (docs/DECISIONS.md), for alerts", GAUGE,
            ("process",))
        self.lock = threading.Lock()  # the HTTP thread renders while events arrive

    def families(self) -> list[Family]:
        return [self.state, self.exits, self.starts, self.events, self.response_timeout,
                self.build_info, self.memory_target]

    def render(self) -> str:
        with self.lock:
            lines = [line for family in self.families() for line in family.render()]
        return "\n".join([*lines, *process_lines()]) + "\n"


def process_lines() -> list[str]:
    """The ``process_*`` series of prometheus_client's process collector, from /proc."""
    try:
        with open("/proc/self/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as handle:
            boot = next(float(line.split()[1]) for line in handle if line.startswith("btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return []
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    # stat fields after the command, 0-based: 11 utime, 12 stime, 19 starttime, 20 vsize,
    # 21 rss (pages).
    values = [
        ("process_virtual_memory_bytes", "Virtual memory size in bytes.", float(fields[20])),
        ("process_resident_memory_bytes", "Resident memory size in bytes.",
         float(int(fields[21]) * page)),
        ("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
         boot + int(fields[19]) / ticks),
        ("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
         (int(fields[11]) + int(fields[12])) / ticks),
        ("process_open_fds", "Number of open file descriptors.",
         float(len(os.listdir("/proc/self/fd")))),
        ("process_max_fds", "Maximum number of open file descriptors.",
         float(resource.getrlimit(resource.RLIMIT_NOFILE)[0])),
    ]
    out = []
    for name, doc, number in values:
        kind = COUNTER if name.endswith("_total") else GAUGE
        out += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", f"{name} {number!r}"]
    return out


def serve(metrics: EventMetrics, host: str, port: int) -> threading.Thread:
    """Answer every HTTP request on ``host:port`` with the exposition (a daemon thread)."""
    listening = socket.create_server((host, port))
    thread = threading.Thread(target=_serve_forever, args=(listening, metrics),
                              name="metrics-http", daemon=True)
    thread.start()
    return thread


def _serve_forever(listening: socket.socket, metrics: EventMetrics) -> None:
    while True:
        try:
            conn, _ = listening.accept()
        except OSError:  # closed
            return
        with conn:
            try:
                conn.settimeout(5.0)
                _answer(conn, metrics)
            except OSError:  # a scraper that went away or never sent a request
                continue


def _answer(conn: socket.socket, metrics: EventMetrics) -> None:
    request = b""
    deadline = time.monotonic() + 5.0
    while b"\r\n\r\n" not in request and b"\n\n" not in request:
        chunk = conn.recv(4096)
        if not chunk or len(request) > 65536 or time.monotonic() > deadline:
            return
        request += chunk
    head = request.split(b" ", 1)[0]
    body = metrics.render().encode() if head in (b"GET", b"HEAD") else b""
    status = b"200 OK" if head in (b"GET", b"HEAD") else b"405 Method Not Allowed"
    conn.sendall(b"HTTP/1.0 " + status + b"\r\nContent-Type: text/plain; version=0.0.4; "
                 b"charset=utf-8\r\nContent-Length: " + str(len(body)).encode() +
                 b"\r\nConnection: close\r\n\r\n" + (body if head == b"GET" else b""))
