"""The real Rosey (``rosey run`` → supervisord → conn, router, callers) deployed in a short
temporary folder against the fake servers.

Not a fake itself: it lives beside them so that the end-to-end tests (through
tests/e2e/harness.py, which adds their pass/fail helpers) and the benches share one way
to deploy, and bench/ imports nothing of tests/.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from fakes.cytube import FakeCytube

BOT = "roseybot"
BOT_PW = "botpw"
SCRUBBED_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OLLAMA_HOST")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_range(count: int) -> int:
    for _ in range(50):
        base = free_port()
        if base + count >= 65535:
            continue
        socks = []
        try:
            for offset in range(count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


class Rosey:
    """One deployment in a short temporary folder (Unix socket paths are limited)."""

    def __init__(self, cytube: FakeCytube, llm: dict[str, Any], **overrides: Any):
        self.home = Path(tempfile.mkdtemp(prefix="rosey-", dir="/tmp"))
        self.config_path = self.home / "config.json"
        self.log_path = self.home / "rosey.log"
        callers_max = overrides.get("callers", {}).get("max", 4)
        self.ports = {"conn": free_port(), "router": free_port(), "events": free_port(),
                      "caller_base": free_port_range(callers_max)}
        config = {
            "domain": cytube.url, "channel": cytube.channel, "user": [BOT, BOT_PW],
            "llm": {"llm_triggers": ["rosey"], "response_timeout": 5, **llm},
            "callers": {"count": 2, "max": callers_max, "heartbeat_interval": 0.2,
                        "liveness": 1.0},
            "conn": {"reconnect_min": 0.2},
            "metrics": {"conn_port": self.ports["conn"], "router_port": self.ports["router"],
                        "caller_base_port": self.ports["caller_base"],
                        "events_port": self.ports["events"]},
            "paths": {"run_dir": "run", "data_dir": "data"},
            "log": {"level": "DEBUG"},
        }
        self.config = merge(config, overrides)
        self.config_path.write_text(json.dumps(self.config, indent=2))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in SCRUBBED_ENV and not k.startswith("ROSEY_")}
        return env

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rosey.cli.main", "--config", str(self.config_path), "run"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True)
        log.close()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rosey.cli.main", "--config",
                               str(self.config_path), *args], capture_output=True, text=True,
                              env=self.env(), timeout=30)

    async def stop(self) -> int | None:
        """SIGTERM, and the exit code; a second call returns it again.  A deployment still
        up after 20 s is SIGKILLed as a group (its code, -9, then fails `deployed`)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout=20)
            except TimeoutError:
                os.killpg(self.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(self.proc.wait)
        return self.proc.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cleanup(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def metric(self, process: str, name: str, labels: dict[str, str] | None = None) -> float:
        """One sample's value from a process's /metrics (0.0 when absent)."""
        port = self.ports["caller_base"] + int(process.split("-")[1]) \
            if process.startswith("caller-") else self.ports[process]
        return self.metric_at(port, name, labels)

    @staticmethod
    def metric_at(port: int, name: str, labels: dict[str, str] | None = None) -> float:
        """The sum of the samples of ``name`` carrying ``labels`` (and maybe more, such as
        ``channel``), as PromQL's ``sum(name{labels})``; 0.0 when there is none."""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        want = {f'{k}="{v}"' for k, v in (labels or {}).items()}
        total = 0.0
        for line in body.splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            metric, _, label_text = key.partition("{")
            got = set(label_text.rstrip("}").split(",")) if label_text else set()
            if metric == name and want <= got:
                total += float(value)
        return total


def bot_lines(cytube: FakeCytube) -> list[str]:
    return [entry["msg"] for entry in cytube.chat_log if entry["username"] == BOT]


async def wait_joined(cytube: FakeCytube, rosey: Rosey, timeout: float = 30.0) -> None:
    try:
        await cytube.wait_for(lambda: BOT in cytube.usernames, timeout=timeout)
    except TimeoutError as exc:
        raise AssertionError(f"bot never joined; logs:\n{rosey.logs()[-5000:]}") from exc
