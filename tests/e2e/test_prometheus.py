"""The dashboards and alerts against a real Prometheus scraping the real stack.

Grafana cannot be installed here, so this is how the dashboards are proven: Debian's
Prometheus (2.42) scrapes conn, router, the callers (through the ``callers.json`` the
supervisord event listener writes) and the listener itself, every second, with the
shipped ``prometheus.yml`` and ``alerts.yml``; after scripted traffic every panel query
must return data, and the key series must hold the values the traffic implies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests import promfiles
from tests.e2e.harness import Rosey, bot_lines, deployed, expect_lines, free_port

MiB = 1024 * 1024


def prometheus_config(rosey: Rosey, home: Path, alert_port: int) -> Path:
    """The shipped prometheus.yml, pointed at this deployment and scraping every second."""
    text = (promfiles.PROM_DIR / "prometheus.yml").read_text()
    swaps = {
        "scrape_interval: 15s": "scrape_interval: 1s",
        "evaluation_interval: 15s": "evaluation_interval: 1s",
        '"127.0.0.1:9461"': f'"127.0.0.1:{rosey.ports["conn"]}"',
        '"127.0.0.1:9462"': f'"127.0.0.1:{rosey.ports["router"]}"',
        '"127.0.0.1:9469"': f'"127.0.0.1:{rosey.ports["events"]}"',
        '"127.0.0.1:9093"': f'"127.0.0.1:{alert_port}"',
        '"../../run/callers.json"': json.dumps(str(rosey.run_dir / "callers.json")),
        "refresh_interval: 30s": "refresh_interval: 1s",
    }
    for old, new in swaps.items():
        assert old in text, f"prometheus.yml changed shape: {old} not found"
        text = text.replace(old, new)
    shutil.copy(promfiles.ALERTS, home / "alerts.yml")
    path = home / "prometheus.yml"
    path.write_text(text)
    return path


class Prometheus:
    def __init__(self, config: Path, home: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(home / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [promfiles.tool("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={home / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn"], stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/query", query=expr)["result"])

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    async def wait_for(self, expr: str, want: float, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.value(expr) != want:
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} = {self.query(expr)}, wanted {want}")
            await asyncio.sleep(0.3)

    async def ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self._is_ready):
                return
            await asyncio.sleep(0.2)
        raise AssertionError("prometheus did not become ready")

    def _is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextlib.asynccontextmanager
async def scraping(rosey: Rosey) -> AsyncIterator[Prometheus]:
    """A Prometheus scraping the deployment, ready for the body and always stopped."""
    prom = Prometheus(prometheus_config(rosey, rosey.home, free_port()), rosey.home)
    try:
        await prom.ready()
        yield prom
    finally:
        prom.stop()


def supervisor_pid(rosey: Rosey, name: str) -> int:
    done = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c",
                           str(rosey.run_dir / "supervisord.conf"), "pid", name],
                          capture_output=True, text=True, timeout=10)
    return int(done.stdout.strip())


@pytest.mark.timeout(90)
async def test_every_dashboard_query_returns_data_after_traffic(cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["llama3.2:3b"]) as llm:
        rosey = Rosey(cytube, {"provider": "ollama", "model": "llama3.2:3b",
                               "ollama_host": llm.url, "llm_cooldown": 0,
                               "response_timeout": 2})
        async with deployed(rosey, cytube), scraping(rosey) as prom:
            # A caller killed behind supervisord's back: the listener counts it.  (First,
            # so that the traffic's counters are not reset with the killed process.)
            os.kill(supervisor_pid(rosey, "caller:caller-1"), signal.SIGKILL)
            exits = ('rosey_supervisor_process_exits_total{process="caller-1",'
                     'expected="false"}')
            await prom.wait_for(exits, 1)
            await prom.wait_for('rosey_supervisor_process_state{process="caller-1"}', 20)
            await cytube.set_media("Test clip")  # one media change for the Channel dashboard
            await cytube.say_as("alice", "rosey, hello")
            await expect_lines(cytube, rosey, 1)
            await cytube.say_as("bob", "rosey how are you?")
            await expect_lines(cytube, rosey, 2)
            llm.fail_status, llm.fail_times = 500, 1  # one retry, then an answer
            await cytube.say_as("alice", "rosey, once more")
            await expect_lines(cytube, rosey, 3)
            llm.fail_status, llm.hang = None, True  # the deadline passes: fallback
            await cytube.say_as("bob", "rosey are you stuck?")
            await expect_lines(cytube, rosey, 4, timeout=6)
            llm.hang = False
            assert bot_lines(cytube)[-1] == "bob: Sorry, I'm having trouble thinking right now."

            # A second media change, so the annotation's changes(...[1m]) sees two values
            # inside its window (the first value alone is not a change).
            await cytube.set_media("Second clip")
            await prom.wait_for("rosey_channel_media_changes_total", 2)
            await prom.wait_for('sum(rosey_router_replies_total{kind="fallback"})', 1)
            await prom.wait_for('count(up{job=~"rosey_.*"} == 1)', 5)

            checks = {
                'sum(rosey_router_replies_total{kind="llm"})': 3,
                'sum(rosey_router_triggers_total)': 4,
                'sum(rosey_llm_retries_total)': 1,
                'rosey_supervisor_process_starts_total{process="caller-1"}': 2,
                'rosey_supervisor_process_state{process="caller-2"}': 0,  # a spare
                'rosey_supervisor_process_state{process="router"}': 20,
                'count(up{job="rosey_caller"})': 2,  # callers.json lists the started two
                "rosey_config_response_timeout_seconds": 2,
                "rosey_conn_connected": 1,
                'rosey_memory_target_bytes{process="conn"}': 50 * MiB,
                'count(rosey_build_info)': 5,
                "rosey_channel_media_changes_total": 2,
                "rosey_channel_peak_users": 3,  # alice, bob and the bot
            }
            got = {expr: prom.value(expr) for expr in checks}
            assert got == checks

            empty = [(where, expr) for where, expr in promfiles.all_expressions()
                     if not where.startswith("alert ") and not prom.query(expr)]
            assert empty == [], f"panels without data: {empty}"
            processes = set(prom.get("/api/v1/label/process/values",
                                     **{"match[]": "rosey_build_info"}))
            assert processes == {"conn", "router", "events", "caller-0", "caller-1"}

            groups = prom.get("/api/v1/rules", type="alert")["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            assert sorted(r["name"] for r in rules) == sorted(a.name for a in promfiles.alerts())
            assert {r["health"] for r in rules} == {"ok"}, [r for r in rules
                                                           if r["health"] != "ok"]

            summary = rosey.cli("status").stdout
            assert "connected: yes" in summary, summary
            assert "replies 4 · fallbacks 1 (25.0 %)" in summary, summary
            assert "callers alive 2" in summary and "callers answering metrics 2" in summary
            memory = prom.query("process_resident_memory_bytes * on(instance, job) "
                                "group_left(process) rosey_build_info")
            print({m["metric"]["process"]: round(float(m["value"][1]) / MiB, 1)
                   for m in memory})
