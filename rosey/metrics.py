"""The metric catalog: every series Rosey exports, in one place.

Names start with ``rosey_``; labels are low-cardinality only (never a user name,
message text or request id).  Each process serves ``/metrics`` on its own loopback
port, so no multiprocess mode is needed.
"""

from __future__ import annotations

import asyncio
import time
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

BUILD_INFO = Gauge("rosey_build_info", "Rosey version running in this process",
                   ["version", "process"])
LOOP_LAG = Histogram("rosey_event_loop_lag_seconds",
                     "How late the event loop woke a 0.5 s timer", ["process"],
                     buckets=FAST_BUCKETS)
IPC_DECODE_ERRORS = Counter("rosey_ipc_decode_errors_total",
                            "IPC frames dropped because they did not decode", ["process"])

# conn
FRAMES_IN = Counter("rosey_conn_frames_total", "Socket.io frames received, by event",
                    ["event"])
FRAME_ERRORS = Counter("rosey_conn_frame_errors_total",
                       "Malformed socket.io frames dropped, by event", ["event"])
REPLAYS_DROPPED = Counter("rosey_conn_replayed_chat_dropped_total",
                          "Chat lines ignored because they were the join replay")
CONNECTED = Gauge("rosey_conn_connected", "1 while joined to the channel")
FATAL = Gauge("rosey_conn_fatal", "1 when conn stopped retrying (ban, bad password, bad name)")
RECONNECTS = Counter("rosey_conn_reconnects_total", "Connection attempts after the first, by cause",
                     ["cause"])
LAST_EVENT = Gauge("rosey_conn_last_event_timestamp_seconds", "When the last frame arrived")
SENT = Counter("rosey_conn_messages_sent_total", "chatMsg/pm frames emitted", ["kind"])
SERVER_DROPPED = Counter("rosey_conn_messages_dropped_by_server_total",
                         "Messages the server refused (cooldown, noflood, spam filter)",
                         ["reason"])
RESENT = Counter("rosey_conn_messages_resent_total", "Messages re-sent after a server cooldown")
SPLITS = Counter("rosey_conn_split_parts_total", "Parts produced by splitting replies")
SAY_OUTCOMES = Counter("rosey_conn_says_total", "Say actions by outcome", ["outcome"])
GOVERNOR_DEPTH = Gauge("rosey_conn_governor_queue_depth", "Parts waiting to be sent")
GOVERNOR_WAIT = Histogram("rosey_conn_governor_wait_seconds",
                          "Time from Say received to last part confirmed", buckets=LATENCY_BUCKETS)

# router
CHAT_EVENTS = Counter("rosey_router_chat_events_total", "Chat and PM events received", ["kind"])
TRIGGERS = Counter("rosey_router_triggers_total", "Messages that triggered the bot, by kind",
                   ["kind"])
RATE_LIMITED = Counter("rosey_router_rate_limited_total", "Triggers refused, by scope",
                       ["scope"])
REQUESTS = Counter("rosey_router_requests_total", "Requests by what became of them",
                   ["outcome"])
QUEUE_DEPTH = Gauge("rosey_router_queue_depth", "Requests waiting for a free caller slot")
QUEUE_OLDEST = Gauge("rosey_router_queue_oldest_seconds", "Age of the oldest waiting request")
IN_FLIGHT = Gauge("rosey_router_in_flight", "Requests sent to callers and not answered")
CALLERS_ALIVE = Gauge("rosey_router_callers_alive", "Callers heard from within the liveness")
REPLY_LATENCY = Histogram("rosey_router_reply_latency_seconds",
                          "Mention received by conn to reply confirmed by its echo",
                          buckets=LATENCY_BUCKETS)
REPLIES = Counter("rosey_router_replies_total", "Replies posted, by kind", ["kind"])
DB_WRITE_LATENCY = Histogram("rosey_router_db_write_seconds",
                             "Time from a write being queued to its commit", buckets=FAST_BUCKETS)
DB_BACKLOG = Gauge("rosey_router_db_backlog", "Writes queued for the SQLite writer thread")
DB_DROPPED = Counter("rosey_router_db_writes_dropped_total",
                     "Writes dropped because the writer queue was full")
DB_SIZE = Gauge("rosey_router_db_size_bytes", "Size of the SQLite database and its WAL")
JOURNAL_OPEN = Gauge("rosey_router_journal_open", "Accepted triggers not yet delivered")
BUDGET_RATIO = Gauge("rosey_router_budget_used_ratio", "Spend so far over the budget",
                     ["period"])

# caller
LLM_REQUESTS = Counter("rosey_llm_requests_total", "Provider calls by outcome",
                       ["provider", "model", "outcome"])
LLM_LATENCY = Histogram("rosey_llm_latency_seconds", "Provider call latency",
                        ["provider", "model"], buckets=LATENCY_BUCKETS)
LLM_TOKENS = Counter("rosey_llm_tokens_total", "Tokens used", ["provider", "model", "kind"])
LLM_RETRIES = Counter("rosey_llm_retries_total", "Provider call retries", ["provider", "kind"])
PROVIDER_UP = Gauge("rosey_llm_provider_up", "1 when the provider answered its health check",
                    ["provider"])
SLOTS_BUSY = Gauge("rosey_caller_slots_busy", "Request slots in use in this caller")


def rosey_version() -> str:
    try:
        return version("rosey")
    except PackageNotFoundError:
        return "0+unknown"


def serve(process: str, host: str, port: int, enabled: bool = True) -> None:
    """Start the /metrics endpoint (a daemon thread) and set build info."""
    BUILD_INFO.labels(rosey_version(), process).set(1)
    if enabled:
        start_http_server(port, addr=host)


async def watch_loop_lag(process: str, interval: float = 0.5) -> None:
    """Run forever, observing how late the loop wakes up: the loop-blocking detector."""
    hist = LOOP_LAG.labels(process)
    while True:
        start = time.perf_counter()
        await asyncio.sleep(interval)
        hist.observe(max(0.0, time.perf_counter() - start - interval))
