"""``rosey ask``: the real prompt, provider call, post-processing and splitting, no CyTube."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fakes.llm import FakeLLM
from rosey.cli import exit_codes
from rosey.cli.ask import ask
from rosey.config import parse_config
from rosey.conn.split import split_message

# The fake model server on loopback, and `rosey ask` in a subprocess.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LONG = ("Rosey: **Sure!** " + "This sentence is here to make the answer long enough. " * 12)


@pytest.mark.parametrize("stream", [False, True])
async def test_ask_prints_the_parts_the_channel_would_see(tmp_path: Path, stream: bool) -> None:
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.reply = lambda body: LONG
        cfg = parse_config({"channel": "c", "user": ["rosey", "pw"],
                            "llm": {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                                    "stream": stream},
                            "router": {"personas": {"pirate": "You are {bot_name}, a pirate."}}},
                           base_dir=tmp_path, env={})
        out = io.StringIO()
        asked = await ask(cfg, "tell me a story", as_user="bob", persona="pirate",
                          show_prompt=True, out=out)
    parts = asked.parts
    assert asked.ok and asked.latency > 0
    body = llm.requests[0]
    assert body["messages"][0] == {"role": "system", "content": "You are rosey, a pirate."}
    assert body["messages"][-1] == {"role": "user", "content": "bob: tell me a story"}
    expected = split_message("bob: Sure! " + LONG.split("**Sure!** ")[1].strip(), 320, 3)
    if stream:  # the first sentence alone (it is long enough), then full parts
        assert parts[0] == "bob: Sure! This sentence is here to make the answer long enough."
        assert " ".join(parts).split() == " ".join(expected).split()
        assert len(expected) <= len(parts) <= len(expected) + 1
    else:
        assert parts == expected
    assert len(parts) == 3
    text = out.getvalue()
    assert "[system] You are rosey, a pirate." in text
    assert f"[1/3, {len(parts[0])} chars] {parts[0]}" in text


async def test_ask_cli_exit_code_tells_a_failed_model_and_prints_one_latency(
        tmp_path: Path) -> None:
    async with FakeLLM("openai", models=["gpt-4o-mini"]) as llm:
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps({
            "channel": "c", "user": ["rosey", "pw"],
            "llm": {"provider": "openai", "model": "gpt-4o-mini", "openai_api_key": "sk-x",
                    "fallback_response": "Sorry, thinking trouble."},
            "providers": {"openai": {"base_url": llm.url}}}))
        command = [sys.executable, "-m", "rosey.cli.main", "--config", str(cfg), "ask", "hello?"]
        answered = await asyncio.to_thread(subprocess.run, command, capture_output=True,
                                           text=True, cwd=ROOT, timeout=60)
        llm.fail_status, llm.delay = 401, 0.3
        done = await asyncio.to_thread(subprocess.run, command, capture_output=True,
                                       text=True, cwd=ROOT, timeout=60)
    assert answered.returncode == exit_codes.OK, answered.stderr
    assert "gpt-4o-mini: ok in" in answered.stdout
    assert done.returncode == exit_codes.MODEL_FAILED, done.stderr
    assert "failed: auth" in done.stdout
    assert "[1/1, 31 chars] alice: Sorry, thinking trouble." in done.stdout
    # One measured number: the summary and the router's log line agree, and it is real.
    shown = re.search(r"failed: auth .* in (\d+\.\d\d) s", done.stdout)
    logged = re.search(r"failed after (\d+\.\d\d) s", done.stderr)
    assert shown and logged, (done.stdout, done.stderr)
    assert shown[1] == logged[1] and float(shown[1]) >= 0.3


async def test_ask_channel_asks_with_that_channels_own_prompt(tmp_path: Path) -> None:
    async with FakeLLM("ollama", models=["m"]) as llm:
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps({
            "user": ["rosey", "pw"], "llm": {"provider": "ollama", "model": "m",
                                             "ollama_host": llm.url, "system_prompt": "TOP"},
            "channels": [{"channel": "movies"},
                         {"channel": "anime", "llm": {"system_prompt": "ANIME"}}]}))
        base = [sys.executable, "-m", "rosey.cli.main", "--config", str(cfg), "ask", "hi",
                "--show-prompt"]
        runs = [await asyncio.to_thread(subprocess.run, base + extra, capture_output=True,
                                        text=True, cwd=ROOT, timeout=60)
                for extra in ([], ["--channel", "Anime"], ["--channel", "nope"])]
    first, anime, nope = runs
    assert first.returncode == 0 and "[system] TOP" in first.stdout, first.stderr
    assert anime.returncode == 0 and "[system] ANIME" in anime.stdout, anime.stderr
    assert nope.returncode == exit_codes.CONFIG
    assert nope.stderr.strip() == ("rosey: --channel nope: not in the config; its channels: "
                                   "movies, anime")
