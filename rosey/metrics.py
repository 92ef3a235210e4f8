"""The metric catalog: every series Rosey exports, in one place.

Names start with ``rosey_``; labels are low-cardinality only (never a user name,
message text or request id; ``channel`` and ``endpoint`` are operator-named and few).
The metrics are defined here on no registry: each process builds its own registry
holding its role's metrics (``registry_for``) and serves it on its own loopback port, so
a process never exports another role's series and no multiprocess mode is needed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import partial
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.gc_collector import GC_COLLECTOR
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.platform_collector import PLATFORM_COLLECTOR
from prometheus_client.process_collector import PROCESS_COLLECTOR

# The catalog's constructors: defined on no registry (registry_for gives each process its own).
counter = partial(Counter, registry=None)
gauge = partial(Gauge, registry=None)
histogram = partial(Histogram, registry=None)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

BUILD_INFO = gauge("rosey_build_info", "Rosey version running in this process",
                   ["version", "process"])
LOOP_LAG = histogram("rosey_event_loop_lag_seconds",
                     "How late the event loop woke a 0.5 s timer", ["process"],
                     buckets=FAST_BUCKETS)
IPC_DECODE_ERRORS = counter("rosey_ipc_decode_errors_total",
                            "IPC frames dropped because they did not decode", ["process"])
MEMORY_TARGET = gauge("rosey_memory_target_bytes",
                      "The resident-memory target of this process (docs/DECISIONS.md), for alerts",
                      ["process"])

# conn
FRAMES_IN = counter("rosey_conn_frames_total", "Socket.io frames received, by event",
                    ["event"])
FRAME_ERRORS = counter("rosey_conn_frame_errors_total",
                       "Malformed socket.io frames dropped, by event", ["event"])
REPLAYS_DROPPED = counter("rosey_conn_replayed_chat_dropped_total",
                          "Chat lines ignored because they were the join replay")
CONNECTED = gauge("rosey_conn_connected", "1 while joined to the channel", ["channel"])
FATAL = gauge("rosey_conn_fatal", "1 when conn stopped retrying, by reason (registered_name, "
              "bad_password, no_account, bad_name, server_ban, channel_ban, no_channel, "
              "channel_password): that channel's session stays idle until the config is fixed",
              ["channel", "reason"])
RECONNECTS = counter("rosey_conn_reconnects_total", "Connection attempts after the first, by cause",
                     ["cause"])
LAST_EVENT = gauge("rosey_conn_last_event_timestamp_seconds", "When the last frame arrived",
                   ["channel"])
SENT = counter("rosey_conn_messages_sent_total", "chatMsg/pm frames emitted", ["kind"])
SERVER_DROPPED = counter("rosey_conn_messages_dropped_by_server_total",
                         "Messages the server refused (cooldown, noflood, spam filter)",
                         ["reason"])
RESENT = counter("rosey_conn_messages_resent_total", "Messages re-sent after a server cooldown")
SPLITS = counter("rosey_conn_split_parts_total", "Parts produced by splitting replies")
SAY_OUTCOMES = counter("rosey_conn_says_total", "Say actions by outcome", ["outcome"])
GOVERNOR_DEPTH = gauge("rosey_conn_governor_queue_depth", "Parts waiting to be sent", ["channel"])
GOVERNOR_WAIT = histogram("rosey_conn_governor_wait_seconds",
                          "Time from Say received to last part confirmed", buckets=LATENCY_BUCKETS)
# (the last event's age is time() - rosey_conn_last_event_timestamp_seconds.)
UNKNOWN_EVENTS = counter("rosey_conn_unknown_events_total",
                         "Socket.io events not in the CyTube 3.86 event table (no label: the "
                         "names come from the server)")
MUTED = gauge("rosey_conn_muted", "1 while the channel has the bot muted (noflood): sending stops",
              ["channel"])
SPAM_FILTERED = counter("rosey_conn_spam_filtered_total",
                        "Messages refused by the server's new-user/link filter", ["reason"])
EXPIRED_PARTS = counter("rosey_conn_expired_parts_total",
                        "Message parts dropped unsent or unconfirmed because the post TTL passed")
KICKS = counter("rosey_conn_kicks_total", "Kicks received, by kind", ["channel", "kind"])
CONNECT_ATTEMPTS = counter("rosey_conn_connect_attempts_total", "Connection attempts, by outcome",
                           ["outcome"])
BACKOFF = gauge("rosey_conn_backoff_seconds", "The wait before the next connection attempt",
                ["channel"])
KEEPALIVES = counter("rosey_conn_keepalives_total", "/afk sent to clear the server's auto-AFK")
MESSAGE_LENGTH = gauge("rosey_conn_message_length", "The chat length limit replies are split to",
                       ["channel"])

# router
CHAT_EVENTS = counter("rosey_router_chat_events_total", "Chat and PM events received", ["kind"])
TRIGGERS = counter("rosey_router_triggers_total", "Messages that triggered the bot, by kind",
                   ["channel", "kind"])
RATE_LIMITED = counter("rosey_router_rate_limited_total", "Triggers refused, by scope",
                       ["channel", "scope"])
REQUESTS = counter("rosey_router_requests_total", "Requests by what became of them",
                   ["channel", "outcome"])
QUEUE_DEPTH = gauge("rosey_router_queue_depth", "Requests waiting for a free caller slot",
                    ["channel"])
QUEUE_OLDEST = gauge("rosey_router_queue_oldest_seconds", "Age of the oldest waiting request")
IN_FLIGHT = gauge("rosey_router_in_flight", "Requests sent to callers and not answered")
CALLERS_ALIVE = gauge("rosey_router_callers_alive", "Callers heard from within the liveness")
REPLY_LATENCY = histogram("rosey_router_reply_latency_seconds",
                          "Mention received by conn to reply confirmed by its echo",
                          ["channel"], buckets=LATENCY_BUCKETS)
REPLIES = counter("rosey_router_replies_total", "Replies posted, by kind", ["channel", "kind"])
SAY_OFFERS = counter("rosey_router_say_offers_total",
                     "Reply segments offered to conn: taken by the socket, refused (conn "
                     "away or full: retried), or acknowledged again (a re-offer conn had done)",
                     ["result"])
DB_WRITE_LATENCY = histogram("rosey_router_db_write_seconds",
                             "Time from a write being queued to its commit", buckets=FAST_BUCKETS)
DB_BACKLOG = gauge("rosey_router_db_backlog", "Writes queued for the SQLite writer thread")
DB_DROPPED = counter("rosey_router_db_writes_dropped_total",
                     "Writes dropped because the writer queue was full")
DB_SIZE = gauge("rosey_router_db_size_bytes", "Size of the SQLite database and its WAL")
JOURNAL_OPEN = gauge("rosey_router_journal_open", "Accepted triggers not yet delivered")
BUDGET_RATIO = gauge("rosey_router_budget_used_ratio", "Spend so far over the budget",
                     ["period"])

# the model endpoints (operator-named, few), scheduled by the router
ENDPOINT_CAPACITY = gauge("rosey_endpoint_capacity",
                          "Calls the endpoint may run at once (providers.<p>.endpoints[].capacity)",
                          ["endpoint"])
ENDPOINT_IN_FLIGHT = gauge("rosey_endpoint_in_flight", "Calls running on the endpoint now",
                           ["endpoint"])
ENDPOINT_UP = gauge("rosey_endpoint_up", "1 while the endpoint's breaker lets calls through, 0 "
                    "while it is taken out (probed back in after the cool-off)", ["endpoint"])
ENDPOINT_REQUESTS = counter("rosey_endpoint_requests_total",
                            "Calls sent to the endpoint, by outcome", ["endpoint", "outcome"])
ENDPOINT_LATENCY = histogram("rosey_endpoint_latency_seconds",
                             "Time from a call sent to the endpoint to its answer", ["endpoint"],
                             buckets=LATENCY_BUCKETS)

# caller
LLM_REQUESTS = counter("rosey_llm_requests_total", "Provider calls by outcome",
                       ["provider", "model", "outcome"])
LLM_LATENCY = histogram("rosey_llm_latency_seconds", "Provider call latency",
                        ["provider", "model"], buckets=LATENCY_BUCKETS)
LLM_TOKENS = counter("rosey_llm_tokens_total", "Tokens used", ["provider", "model", "kind"])
LLM_RETRIES = counter("rosey_llm_retries_total", "Provider call retries", ["provider", "kind"])
PROVIDER_UP = gauge("rosey_llm_provider_up", "1 when the provider answered its health check",
                    ["provider"])
SLOTS_BUSY = gauge("rosey_caller_slots_busy", "Request slots in use in this caller")

LLM_ATTEMPTS = counter("rosey_llm_attempts_total",
                       "Provider calls (a request makes several on retry or failover); "
                       "outcome skipped = not called because its breaker was open",
                       ["provider", "model", "outcome"])
LLM_FAILOVERS = counter("rosey_llm_failovers_total",
                        "Requests that left this provider entry for the next in the chain",
                        ["provider", "model"])
LLM_BREAKER_STATE = gauge("rosey_llm_breaker_state",
                          "Circuit breaker per provider entry: 0 closed, 1 half-open, 2 open",
                          ["provider", "model"])
LLM_COST = counter("rosey_llm_cost_usd_total", "Estimated spend from tokens and budget.prices",
                   ["provider", "model"])
CALLER_DRAINING = gauge("rosey_caller_draining", "1 while this caller finishes its last calls")


# supervisor: exported by the event listener (rosey/events; exposition.py writes them with
# the standard library only), which sees every state change: a process dying between two
# scrapes is invisible to process_start_time_seconds.
SUPERVISOR_STATE = gauge("rosey_supervisor_process_state",
                         "supervisord state code: 0 STOPPED, 10 STARTING, 20 RUNNING, "
                         "30 BACKOFF, 40 STOPPING, 100 EXITED, 200 FATAL, 1000 UNKNOWN",
                         ["program", "process"])
SUPERVISOR_EXITS = counter("rosey_supervisor_process_exits_total",
                           "Exits supervisord did not ask for (EXITED, or BACKOFF: died while "
                           "starting); expected as supervisord judged the exit code",
                           ["program", "process", "expected"])
SUPERVISOR_STARTS = counter("rosey_supervisor_process_starts_total",
                            "Times supervisord started the process (restarts + 1)",
                            ["program", "process"])
SUPERVISOR_EVENTS = counter("rosey_supervisor_events_total",
                            "supervisord events handled by the listener", ["event"])
CONFIG_RESPONSE_TIMEOUT = gauge("rosey_config_response_timeout_seconds",
                                "llm.response_timeout, so alerts can relate latency to it")

# streaming
FIRST_PART_LATENCY = histogram(
    "rosey_router_first_part_seconds",
    "Mention received by conn to the reply's first chat message confirmed by its echo "
    "(the whole reply's when it is one segment)", ["channel"], buckets=LATENCY_BUCKETS)
LLM_TOKEN_RATE = histogram(
    "rosey_llm_tokens_per_second",
    "Completion tokens per second of generation (from the first token when streamed)",
    ["provider", "model"], buckets=(1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 150, 250, 500))
LLM_PARTIALS = counter("rosey_llm_partials_total",
                       "Streamed pieces of answers sent to the router", ["provider"])

# router: the channel and moderator commands
CHANNEL_USERS = gauge("rosey_channel_users", "Logged-in users in the channel's userlist (bot "
                      "included)", ["channel"])
CHANNEL_CONNECTIONS = gauge("rosey_channel_connections",
                            "Sockets in the channel, anonymous ones included (usercount)",
                            ["channel"])
CHANNEL_PEAK = gauge("rosey_channel_peak_users", "Today's high-water mark of rosey_channel_users",
                     ["channel"])
CHANNEL_MEDIA_CHANGES = counter("rosey_channel_media_changes_total", "changeMedia events")
CHANNEL_PLAYLIST_ITEMS = gauge("rosey_channel_playlist_items", "Items in the channel playlist")
CHANNEL_MEDIA_STARTED = gauge("rosey_channel_media_started_timestamp_seconds",
                              "When the media now playing started (for dashboard annotations)")
MOD_COMMANDS = counter("rosey_router_mod_commands_total",
                       "Commands by name (from the fixed table) and outcome",
                       ["command", "outcome"])
MOD_ACTIONS = counter("rosey_router_mod_actions_total",
                      "Typed moderator actions sent to conn, by kind and what the server said",
                      ["action", "outcome"])


def rosey_version() -> str:
    try:
        return version("rosey")
    except PackageNotFoundError:
        return "0+unknown"


MiB = 1024 * 1024
# Alert thresholds from the memory targets, except conn: importing the three libraries
# it must use (python-socketio with aiohttp, pyzmq, prometheus-client) already takes
# 44.9 MiB, so it runs at ~46 MiB; a 45 MiB alert would page for ever.  50 MiB still
# catches a leak.  The event listener imports the standard library only (~13 MiB).
MEMORY_TARGETS = {"conn": 50 * MiB, "router": 60 * MiB, "caller": 80 * MiB, "events": 20 * MiB}
# Which role exports a metric, by name prefix; names not listed are exported by every process.
OWNERS = (("rosey_conn_", "conn"), ("rosey_router_", "router"), ("rosey_llm_", "caller"),
          ("rosey_caller_", "caller"), ("rosey_supervisor_", "events"),
          ("rosey_config_", "events"), ("rosey_channel_", "router"),
          ("rosey_endpoint_", "router"))
# Label values known in advance, so rate() and ratios see a 0 before the first event.
PREINIT: dict[str, list[tuple[MetricWrapperBase, tuple[str, ...]]]] = {
    "conn": [(RECONNECTS, ("disconnect",)), (RECONNECTS, ("kick",)),
             (SERVER_DROPPED, ("cooldown",)), (SERVER_DROPPED, ("noflood",)),
             (SERVER_DROPPED, ("spamFiltered",)), (SENT, ("chat",)), (SENT, ("pm",)),
             (SAY_OUTCOMES, ("delivered",))],
    "router": [*[(REPLIES, (k,)) for k in ("llm", "fallback", "delivered", "undelivered",
                                            "expired")],
               *[(REQUESTS, (k,)) for k in ("accepted", "answered", "coalesced", "requeued",
                                             "shed", "late")],
               *[(RATE_LIMITED, (k,)) for k in ("user", "global", "user_bucket", "global_bucket",
                                                 "daily", "queue", "budget")],
               *[(TRIGGERS, (k,)) for k in ("name", "keyword", "regex", "pm")],
               (CHAT_EVENTS, ("chat",)), (CHAT_EVENTS, ("pm",)),
               (BUDGET_RATIO, ("day",)), (BUDGET_RATIO, ("month",))],
}


def role(process: str) -> str:
    """``caller-3`` → ``caller``; other process names are their role."""
    return process.split("-", 1)[0]


def owner(name: str) -> str | None:
    for prefix, who in OWNERS:
        if name.startswith(prefix):
            return who
    return None


def name_of(metric: MetricWrapperBase) -> str:
    """The family name (a counter's without ``_total``)."""
    return next(iter(metric.describe())).name


def catalog() -> list[MetricWrapperBase]:
    """Every metric this module defines."""
    return [v for v in globals().values() if isinstance(v, MetricWrapperBase)]


ROLES = ("conn", "router", "caller", "events")
# The process_*/python_* series Prometheus expects of every target (RSS, CPU, start time).
STANDARD_COLLECTORS = (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR)


def registry_for(process: str) -> CollectorRegistry:
    """A new registry holding this role's metrics and the every-process ones (a label-less
    gauge such as rosey_conn_backoff_seconds would otherwise read 0 from every process)."""
    who = role(process)
    registry = CollectorRegistry()
    for metric in catalog():
        if owner(name_of(metric)) in (None, who):
            registry.register(metric)
    for collector in STANDARD_COLLECTORS:
        registry.register(collector)
    return registry


def preinit(process: str, channels: Sequence[str] = (),
            endpoints: Sequence[tuple[str, int]] = ()) -> CollectorRegistry:
    """This process's registry, with the known label sets created at 0 (for each of
    ``channels`` where the metric is per channel); ``endpoints``: (name, capacity)."""
    who = role(process)
    for metric, labels in PREINIT.get(who, []):
        if not _per_channel(metric):
            metric.labels(*labels)
    for channel in channels:
        add_channel(process, channel)
    IPC_DECODE_ERRORS.labels(who)
    LOOP_LAG.labels(process)
    if who in MEMORY_TARGETS:
        MEMORY_TARGET.labels(process).set(MEMORY_TARGETS[who])
    if who == "router":
        for name, capacity in endpoints:
            ENDPOINT_CAPACITY.labels(name).set(capacity)
            ENDPOINT_IN_FLIGHT.labels(name).set(0)
            ENDPOINT_UP.labels(name).set(1)
            ENDPOINT_REQUESTS.labels(name, "ok")
            ENDPOINT_LATENCY.labels(name)
    return registry_for(process)


def add_channel(process: str, channel: str) -> None:
    """Create a channel's known label sets at 0 (at start, and when a channel joins)."""
    who = role(process)
    for metric, labels in PREINIT.get(who, []):
        if _per_channel(metric):
            metric.labels(channel, *labels)
    if who == "conn":
        CONNECTED.labels(channel).set(0)
        MUTED.labels(channel).set(0)
    if who == "router":
        QUEUE_DEPTH.labels(channel).set(0)


def remove_channel(channel: str) -> None:
    """Drop every series of a channel that left the config (a gauge left at 0 would keep
    RoseyCytubeDisconnected firing for a channel nobody wants any more)."""
    for metric in catalog():
        if _per_channel(metric):
            # prometheus_client lists a metric's label sets only in its private _metrics
            for values in [v for v in list(metric._metrics) if v[0] == channel]:
                metric.remove(*values)


def _per_channel(metric: MetricWrapperBase) -> bool:
    names: tuple[str, ...] = getattr(metric, "_labelnames", ())
    return bool(names) and names[0] == "channel"


def serve(process: str, host: str, port: int, enabled: bool = True,
          channels: Sequence[str] = (),
          endpoints: Sequence[tuple[str, int]] = ()) -> CollectorRegistry:
    """Start the /metrics endpoint of this process's registry (a daemon thread)."""
    BUILD_INFO.labels(rosey_version(), process).set(1)
    registry = preinit(process, channels, endpoints)
    if enabled:
        start_http_server(port, addr=host, registry=registry)
    return registry


async def watch_loop_lag(process: str, interval: float = 0.5) -> None:
    """Run forever, observing how late the loop wakes up: the loop-blocking detector."""
    hist = LOOP_LAG.labels(process)
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        hist.observe(max(0.0, time.perf_counter() - start - interval))
