"""``rosey status``: supervisord's view, a live summary, and one exit code a script can use.

Read from supervisord, the processes' ``/metrics`` endpoints (short timeouts: a hung process
must not hang the command) and the router's control socket.  Counters and histograms are
since each process started; gauges are now.  Formatting and the verdict are pure
(``format_summary``, ``verdict``) and tested on recorded text.

Exit codes (the most serious one wins):

- 0 running: supervisord answers, conn, router and events are RUNNING and conn has not
  stopped retrying (it may be reconnecting with backoff: that heals by itself, the
  RoseyCytubeDisconnected alert watches how long it lasts);
- 1 a process is down: conn, router or events not RUNNING, or any caller FATAL, EXITED,
  BACKOFF or UNKNOWN (a STOPPED caller is the pool scaled down, not a fault);
- 2 the config is invalid (as for every ``rosey`` command);
- 5 conn stopped retrying in a channel (registered guest name, wrong password, ban, missing
  channel, channel password): everything runs but the bot will not join that channel until
  the config is fixed and applied (``rosey apply``); stderr names the channel, the reason
  and the fix, in ``rosey doctor``'s words;
- 4 not running: no supervisord answers in ``paths.run_dir``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import urllib.request
from collections.abc import Callable, Iterable

from prometheus_client.parser import text_string_to_metric_families

from rosey.cli import exit_codes
from rosey.config import Config
from rosey.conn import refusals

FETCH_TIMEOUT = 0.5
EXIT_OK, EXIT_PROCESS_DOWN = exit_codes.OK, exit_codes.FAILED
EXIT_STOPPED_RETRYING, EXIT_NOT_RUNNING = exit_codes.CONN_STOPPED, exit_codes.NOT_RUNNING
REQUIRED = ("conn", "router", "events")
FAULTY = ("FATAL", "EXITED", "BACKOFF", "UNKNOWN")


class Samples:
    """The samples of one or more /metrics texts; absent series read as None."""

    def __init__(self, texts: Iterable[str]):
        self.rows: list[tuple[str, dict[str, str], float]] = []
        for text in texts:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    self.rows.append((sample.name, dict(sample.labels), float(sample.value)))

    def sum(self, name: str, **labels: str) -> float | None:
        values = [value for got, have, value in self.rows if got == name
                  and all(have.get(k) == v for k, v in labels.items())]
        return math.fsum(values) if values else None

    def buckets(self, name: str, **labels: str) -> list[tuple[float, float]]:
        """Cumulative (le, count) of a histogram, summed over its label sets (those with
        ``labels``)."""
        totals: dict[float, float] = {}
        for got, have, value in self.rows:
            if got == f"{name}_bucket" and all(have.get(k) == v for k, v in labels.items()):
                le = float(have["le"])
                totals[le] = totals.get(le, 0.0) + value
        return sorted(totals.items())


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile: linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower_le
            if count == lower_count:
                return le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return lower_le


def _num(value: float | None, fmt: str = "{:g}") -> str:
    return "?" if value is None else fmt.format(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def format_summary(conn: str | None, router: str | None, callers: list[str | None],
                   ctl: str = "") -> str:
    """The summary lines from each process's metric text (None: did not answer)."""
    lines = []
    c = Samples([conn or ""])
    r = Samples([router or ""])
    k = Samples([text for text in callers if text])
    channels = channel_states(conn)
    joined = sum(1 for state in channels.values() if state == "joined")
    if conn is None:
        state = "unreachable"
    elif len(channels) > 1:
        state = f"{joined} of {len(channels)} channels"
    else:
        state = {1: "yes", 0: "NO"}[joined] if channels else "?"
        if (stopped := stopped_channels(conn)):
            state += f" (stopped retrying: {stopped[0][1]})"
    lines.append(f"connected: {state} · reconnects {_num(c.sum('rosey_conn_reconnects_total'))}"
                 f" · messages sent {_num(c.sum('rosey_conn_messages_sent_total'))}, "
                 f"dropped by server {_num(c.sum('rosey_conn_messages_dropped_by_server_total'))}")
    if len(channels) > 1:
        lines += [f"  channel {name}: {state}" for name, state in channels.items()]
    if router is None:
        lines.append("router: metrics unreachable")
    else:
        llm = r.sum("rosey_router_replies_total", kind="llm") or 0.0
        fallback = r.sum("rosey_router_replies_total", kind="fallback") or 0.0
        total = llm + fallback
        ratio = f"{100 * fallback / total:.1f} %" if total else "-"
        latency = r.buckets("rosey_router_reply_latency_seconds")
        lines.append(
            f"callers alive {_num(r.sum('rosey_router_callers_alive'))} · queue "
            f"{_num(r.sum('rosey_router_queue_depth'))} (oldest "
            f"{_seconds(r.sum('rosey_router_queue_oldest_seconds'))}) · in flight "
            f"{_num(r.sum('rosey_router_in_flight'))} · shed "
            f"{_num(r.sum('rosey_router_requests_total', outcome='shed'))}")
        lines.append(f"replies {total:g} · fallbacks {fallback:g} ({ratio}) · reply latency "
                     f"p50 {_seconds(quantile(0.5, latency))} "
                     f"p95 {_seconds(quantile(0.95, latency))}")
        lines.extend(endpoint_lines(r))
    answering = sum(1 for text in callers if text)
    prompt = k.sum("rosey_llm_tokens_total", kind="prompt") or 0.0
    completion = k.sum("rosey_llm_tokens_total", kind="completion") or 0.0
    cost = k.sum("rosey_llm_cost_usd_total")
    llm_latency = k.buckets("rosey_llm_latency_seconds")
    lines.append(f"callers answering metrics {answering} · tokens {prompt + completion:g} "
                 f"({prompt:g} prompt, {completion:g} completion)"
                 + (f" · cost ${cost:.4f}" if cost is not None else "")
                 + f" · llm p95 {_seconds(quantile(0.95, llm_latency))}")
    if ctl:
        lines.append(f"router says: {ctl}")
    return "\n".join(["-- live (counters since each process started) --", *lines])


def endpoint_lines(r: Samples) -> list[str]:
    """One line per model endpoint the router schedules: up or down (its breaker), calls in
    flight of its capacity, median latency and outcomes since the router started."""
    names = sorted({labels["endpoint"] for name, labels, _ in r.rows
                    if name == "rosey_endpoint_capacity" and "endpoint" in labels})
    lines = []
    for name in names:
        up = {1.0: "up", 0.0: "DOWN"}.get(r.sum("rosey_endpoint_up", endpoint=name) or 0.0, "?")
        p50 = quantile(0.5, r.buckets("rosey_endpoint_latency_seconds", endpoint=name))
        outcomes = {o: r.sum("rosey_endpoint_requests_total", endpoint=name, outcome=o) or 0.0
                    for o in ("ok", "failed", "error")}
        lines.append(f"endpoint {name}: {up} · in flight "
                     f"{_num(r.sum('rosey_endpoint_in_flight', endpoint=name))}/"
                     f"{_num(r.sum('rosey_endpoint_capacity', endpoint=name))} · p50 "
                     f"{_seconds(p50)} · {outcomes['ok']:g} ok, {outcomes['failed']:g} failed "
                     f"(host), {outcomes['error']:g} model errors")
    return lines


def fetch(host: str, port: int, timeout: float = FETCH_TIMEOUT) -> str | None:
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as resp:
            return str(resp.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None


def summary(cfg: Config, conn: str | None) -> str:
    m = cfg.metrics
    if not m.enabled:
        return "-- live: metrics.enabled is false, no summary --"
    callers = [fetch(m.host, m.caller_base_port + n) for n in range(cfg.callers.max)]
    from rosey.cli.control import send_command

    ok, text = send_command(cfg.paths.run_dir, ["status"], timeout=1.0)
    return format_summary(conn, fetch(m.host, m.router_port), callers, text if ok else "")


def stopped_channels(conn: str | None) -> list[tuple[str, refusals.FatalReason]]:
    """(channel, reason) of every ``rosey_conn_fatal`` at 1 in conn's metric text."""
    found = {(labels.get("channel", ""), reason) for name, labels, value
             in Samples([conn or ""]).rows for reason in refusals.FATAL_REASONS
             if name == "rosey_conn_fatal" and value == 1 and labels.get("reason") == reason}
    return sorted(found)


def channel_states(conn: str | None) -> dict[str, str]:
    """Each channel conn serves: joined, retrying (backoff: heals by itself) or stopped."""
    states = {labels["channel"]: "joined" if value == 1 else "retrying" for name, labels, value
              in Samples([conn or ""]).rows
              if name == "rosey_conn_connected" and "channel" in labels}
    for channel, reason in stopped_channels(conn):
        states[channel] = f"stopped retrying ({reason})"
    return states


def process_problems(supervisor_status: str) -> list[str]:
    """What is wrong in ``supervisorctl status`` output (``name  STATE  detail`` lines)."""
    states = {}
    for line in supervisor_status.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            states[fields[0]] = fields[1]
    problems = [f"{name} is {states.get(name, 'missing')}" for name in REQUIRED
                if states.get(name) != "RUNNING"]
    problems += [f"{name} is {state}" for name, state in states.items()
                 if name.startswith("caller:") and state in FAULTY]
    return problems


def verdict(supervisor_status: str, conn: str | None,
            names: refusals.Names) -> tuple[int, list[str]]:
    """(exit code, the lines that explain it) from supervisord's status and conn's metrics."""
    stopped = stopped_channels(conn)
    problems = process_problems(supervisor_status)
    if stopped:
        lines = []
        for channel, reason in stopped:
            each = dataclasses.replace(names, channel=channel or names.channel)
            lines.append(f"conn stopped retrying in {each.channel} ({reason}): "
                         f"{refusals.what(reason, each)} — fix: {refusals.fix(reason, each)}; "
                         "then run `rosey apply`")
        return EXIT_STOPPED_RETRYING, [*lines, *problems]
    return (EXIT_PROCESS_DOWN if problems else EXIT_OK), problems


def run(cfg: Config, supervisorctl_status: Callable[[], tuple[int, str, str]]) -> int:
    """Print the status and return the exit code (see the module's docstring)."""
    code, out, err = supervisorctl_status()
    if code not in (0, 3):  # 3: some program is not running; 4: no supervisord answers
        print(err or out, end="", file=sys.stderr)
        print(f"rosey: not running (no supervisord answers in {cfg.paths.run_dir}); start "
              "it with `rosey run`", file=sys.stderr)
        return EXIT_NOT_RUNNING
    print(out, end="")
    conn = None
    if cfg.metrics.enabled:
        conn = fetch(cfg.metrics.host, cfg.metrics.conn_port)
    print(summary(cfg, conn))
    if not cfg.metrics.enabled:
        print("rosey: metrics.enabled is false, so status cannot see whether conn stopped "
              "retrying: see the conn log", file=sys.stderr)
    names = refusals.Names(name=cfg.bot_name, domain=cfg.domain, channel=cfg.channel)
    exit_code, why = verdict(out, conn, names)
    for line in why:
        print(f"rosey: {line}", file=sys.stderr)
    return exit_code
