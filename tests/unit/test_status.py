"""``rosey status``'s live summary: formatting from recorded metric text."""

from __future__ import annotations

import time

import pytest

from rosey.cli import status
from rosey.conn import refusals
from tests.e2e.harness import free_port

CONN = """\
# TYPE rosey_conn_connected gauge
rosey_conn_connected{channel="testchan"} 1.0
# TYPE rosey_conn_reconnects_total counter
rosey_conn_reconnects_total{cause="disconnect"} 2.0
rosey_conn_reconnects_total{cause="kick"} 1.0
# TYPE rosey_conn_messages_sent_total counter
rosey_conn_messages_sent_total{kind="chat"} 9.0
# TYPE rosey_conn_messages_dropped_by_server_total counter
rosey_conn_messages_dropped_by_server_total{reason="cooldown"} 1.0
"""
ROUTER = """\
# TYPE rosey_router_callers_alive gauge
rosey_router_callers_alive 2.0
# TYPE rosey_router_queue_depth gauge
rosey_router_queue_depth 3.0
# TYPE rosey_router_queue_oldest_seconds gauge
rosey_router_queue_oldest_seconds 1.5
# TYPE rosey_router_in_flight gauge
rosey_router_in_flight 4.0
# TYPE rosey_router_requests_total counter
rosey_router_requests_total{outcome="shed"} 1.0
# TYPE rosey_router_replies_total counter
rosey_router_replies_total{kind="llm"} 9.0
rosey_router_replies_total{kind="fallback"} 1.0
rosey_router_replies_total{kind="delivered"} 10.0
# TYPE rosey_router_reply_latency_seconds histogram
rosey_router_reply_latency_seconds_bucket{le="0.1"} 0.0
rosey_router_reply_latency_seconds_bucket{le="1.0"} 8.0
rosey_router_reply_latency_seconds_bucket{le="2.0"} 10.0
rosey_router_reply_latency_seconds_bucket{le="+Inf"} 10.0
rosey_router_reply_latency_seconds_count 10.0
rosey_router_reply_latency_seconds_sum 7.0
"""


STOPPED = """\
# TYPE rosey_conn_connected gauge
rosey_conn_connected{channel="testchan"} 0.0
# TYPE rosey_conn_fatal gauge
rosey_conn_fatal{channel="testchan",reason="registered_name"} 1.0
rosey_conn_fatal{channel="testchan",reason="bad_password"} 0.0
"""
SUPERVISOR = """\
caller:caller-0                  RUNNING   pid 11, uptime 0:01:00
caller:caller-1                  STOPPED   Nov 30 01:00 PM
conn                             RUNNING   pid 12, uptime 0:01:00
events                           RUNNING   pid 10, uptime 0:01:01
router                           RUNNING   pid 13, uptime 0:01:00
"""
NAMES = refusals.Names(name="RoseyBot", domain="https://cytu.be", channel="testchan")


def caller(prompt: int, completion: int, cost: float) -> str:
    return f"""\
# TYPE rosey_llm_tokens_total counter
rosey_llm_tokens_total{{provider="openai",model="m",kind="prompt"}} {prompt}.0
rosey_llm_tokens_total{{provider="openai",model="m",kind="completion"}} {completion}.0
# TYPE rosey_llm_cost_usd_total counter
rosey_llm_cost_usd_total{{provider="openai",model="m"}} {cost}
# TYPE rosey_llm_latency_seconds histogram
rosey_llm_latency_seconds_bucket{{provider="openai",model="m",le="1.0"}} 4.0
rosey_llm_latency_seconds_bucket{{provider="openai",model="m",le="+Inf"}} 4.0
"""


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 0.0), (1.0, 8.0), (2.0, 10.0), (float("inf"), 10.0)]
    assert status.quantile(0.5, buckets) == pytest.approx(0.1 + 0.9 * 5 / 8)
    assert status.quantile(0.95, buckets) == pytest.approx(1.0 + 1.0 * 1.5 / 2)
    assert status.quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None
    assert status.quantile(0.99, [(1.0, 1.0), (float("inf"), 5.0)]) == 1.0  # in +Inf


def test_summary_of_a_healthy_stack() -> None:
    text = status.format_summary(CONN, ROUTER, [caller(100, 20, 0.01), None,
                                                caller(50, 10, 0.02)], "llm=on users=3")
    lines = text.splitlines()
    assert lines[0].startswith("-- live")
    assert lines[1] == ("connected: yes · reconnects 3 · messages sent 9, dropped by server 1")
    assert lines[2] == "callers alive 2 · queue 3 (oldest 1.50 s) · in flight 4 · shed 1"
    assert lines[3] == "replies 10 · fallbacks 1 (10.0 %) · reply latency p50 662 ms p95 1.75 s"
    assert lines[4] == ("callers answering metrics 2 · tokens 180 (150 prompt, 30 completion)"
                        " · cost $0.0300 · llm p95 950 ms")
    assert lines[5] == "router says: llm=on users=3"


ENDPOINT_SAMPLES = [  # (series, endpoint, extra labels, value)
    ("capacity", "gpu1", "", 4), ("capacity", "gpu2", "", 2),
    ("in_flight", "gpu1", "", 3), ("in_flight", "gpu2", "", 0),
    ("up", "gpu1", "", 1), ("up", "gpu2", "", 0),
    ("requests_total", "gpu1", ',outcome="ok"', 20),
    ("requests_total", "gpu2", ',outcome="failed"', 3),
    ("requests_total", "gpu2", ',outcome="error"', 1),
    *[("latency_seconds_bucket", ep, f',le="{le}"', n)
      for ep, counts in (("gpu1", (10, 20, 20)), ("gpu2", (0, 0, 0)))
      for le, n in zip(("0.5", "1.0", "+Inf"), counts, strict=True)],
]
ENDPOINTS = "".join(  # untyped samples: the parser keeps their names as they are
    f'rosey_endpoint_{series}{{endpoint="{ep}"{extra}}} {value}\n'
    for series, ep, extra, value in ENDPOINT_SAMPLES)


def test_summary_shows_each_endpoint_health_load_and_latency() -> None:
    lines = status.format_summary(CONN, ROUTER + ENDPOINTS, []).splitlines()
    assert lines[4:6] == [
        "endpoint gpu1: up · in flight 3/4 · p50 500 ms · 20 ok, 0 failed (host), 0 model errors",
        "endpoint gpu2: DOWN · in flight 0/2 · p50 - · 0 ok, 3 failed (host), 1 model errors"]
    assert not any(line.startswith("endpoint") for line in
                   status.format_summary(CONN, ROUTER, []).splitlines())


def test_summary_when_processes_do_not_answer() -> None:
    text = status.format_summary(None, None, [None, None])
    assert "connected: unreachable" in text
    assert "router: metrics unreachable" in text
    assert "callers answering metrics 0 · tokens 0 (0 prompt, 0 completion) · llm p95 -" in text
    disconnected = status.format_summary(STOPPED, None, [])
    assert "connected: NO (stopped retrying: registered_name)" in disconnected


@pytest.mark.integration
def test_fetch_gives_up_fast_on_a_closed_port() -> None:
    started = time.monotonic()
    assert status.fetch("127.0.0.1", free_port()) is None
    assert time.monotonic() - started < 1.0


def test_verdict_exit_codes() -> None:
    assert status.verdict(SUPERVISOR, CONN, NAMES) == (0, [])  # a STOPPED caller is scaling
    code, why = status.verdict(SUPERVISOR, STOPPED, NAMES)
    assert code == status.EXIT_STOPPED_RETRYING == 5
    assert why == ["conn stopped retrying in testchan (registered_name): the guest name "
                   "RoseyBot is a registered account on https://cytu.be — fix: "
                   f"{refusals.fix('registered_name', NAMES)}; then run `rosey apply`"]
    assert "pick a guest name nobody registered" in why[0]
    reconnecting = CONN.replace('testchan"} 1.0', 'testchan"} 0.0')
    assert status.verdict(SUPERVISOR, reconnecting, NAMES) == (0, [])  # heals by itself
    crashed = SUPERVISOR.replace("caller-1                  STOPPED", "caller-1   FATAL")
    assert status.verdict(crashed, CONN, NAMES) == (1, ["caller:caller-1 is FATAL"])
    no_router = "\n".join(line for line in SUPERVISOR.splitlines()
                          if not line.startswith("router"))
    assert status.verdict(no_router, None, NAMES) == (1, ["router is missing"])
    backoff = SUPERVISOR.replace("conn                             RUNNING",
                                 "conn BACKOFF")
    assert status.verdict(backoff, STOPPED, NAMES)[0] == 5  # the more specific one wins


def test_run_says_not_running_with_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    from rosey.config_schema import Config, Paths

    cfg = Config(domain="https://cytu.be", channel="testchan", user=["RoseyBot", ""],
                 paths=Paths(run_dir="/nonexistent/run"))
    assert status.run(cfg, lambda: (4, "", "unix:///nonexistent/run/supervisor.sock no "
                                    "such file\n")) == 4
    err = capsys.readouterr().err
    assert "rosey: not running (no supervisord answers in /nonexistent/run)" in err


def test_each_channel_is_shown_and_a_stopped_one_is_named() -> None:
    many = """\
# TYPE rosey_conn_connected gauge
rosey_conn_connected{channel="movies"} 1.0
rosey_conn_connected{channel="anime"} 0.0
rosey_conn_connected{channel="music"} 0.0
# TYPE rosey_conn_fatal gauge
rosey_conn_fatal{channel="movies",reason="channel_ban"} 0.0
rosey_conn_fatal{channel="anime",reason="channel_ban"} 1.0
rosey_conn_fatal{channel="music",reason="channel_ban"} 0.0
"""
    text = status.format_summary(many, None, [])
    assert "connected: 1 of 3 channels" in text
    assert "  channel movies: joined" in text
    assert "  channel anime: stopped retrying (channel_ban)" in text
    assert "  channel music: retrying" in text
    code, why = status.verdict(SUPERVISOR, many, NAMES)
    assert code == status.EXIT_STOPPED_RETRYING
    assert len(why) == 1 and why[0].startswith("conn stopped retrying in anime (channel_ban): "
                                               "RoseyBot is banned from anime")
    healthy = many.replace('"anime",reason="channel_ban"} 1.0', '"anime",reason="channel_ban"} 0.0')
    assert status.verdict(SUPERVISOR, healthy, NAMES) == (0, [])  # retrying heals by itself
