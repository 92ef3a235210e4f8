"""``rosey doctor`` against the fake CyTube and the fake OpenAI / Ollama servers.

All ✔ for a healthy deployment, and for each broken part a ✘ line that names the fix:
wrong password, missing model, bad key, unreachable CyTube host, unreachable Ollama host.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from rosey.cli.doctor import Check, doctor, rank_check
from rosey.config import parse_config
from rosey.conn import refusals

ROOT = Path(__file__).resolve().parents[2]
BOT, PW = "roseybot", "botpw"
KEY = "sk-good"


@pytest.fixture
async def cytube() -> AsyncIterator[FakeCytube]:
    async with FakeCytube("testchan", max_length=400) as fake:
        fake.add_account(BOT, PW, rank=2)
        fake.add_virtual_user("alice", rank=1)
        yield fake


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(tmp_path: Path, cytube_url: str, llm: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"domain": cytube_url, "channel": "testchan", "user": [BOT, PW],
            "llm": {"response_timeout": 5, **llm}, "conn": {"connect_timeout": 3},
            "paths": {"run_dir": str(tmp_path / "run")}, **extra}


async def run(tmp_path: Path, raw: dict[str, Any]) -> list[Check]:
    cfg = parse_config(raw, base_dir=tmp_path, env={})
    checks: list[Check] = []
    await doctor(cfg, checks.append)
    return checks


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


async def test_all_green_with_openai(tmp_path: Path, cytube: FakeCytube) -> None:
    async with FakeLLM("openai", models=["gpt-4o-mini"]) as llm:
        llm.api_key = KEY
        llm.reply = "Hello"
        checks = await run(tmp_path, config(tmp_path, cytube.url, {
            "provider": "openai", "model": "gpt-4o-mini", "openai_api_key": KEY},
            providers={"openai": {"base_url": llm.url}}))
        assert [c.ok for c in checks] == [True] * 6, [c.line() for c in checks]
        got = by_name(checks)
        assert list(got) == ["socketconfig", "message length", "login", "rank",
                             "llm openai gpt-4o-mini", "llm test completion"]
        assert "400 characters" in got["message length"].detail
        assert got["login"].detail == f"joined testchan as {BOT} (registered account), then left"
        assert got["rank"].detail.startswith("2 (moderator)")
        assert "escapes a leading `/`" in got["rank"].detail
        assert "antiflood is off" in got["rank"].detail
        assert got["llm test completion"].detail.startswith("'Hello' in ")
        # one token asked for, and the bot left the channel again
        assert llm.requests[-1]["max_tokens"] == 1
        await cytube.wait_for(lambda: BOT not in cytube.usernames)
        sent = [(event, data) for _, event, data in cytube.frames_from_clients]
        assert sent == [("joinChannel", {"name": "testchan"}), ("login", {"name": BOT, "pw": PW})]
        assert all(c.line().startswith("✔ ") for c in checks)


async def test_wrong_password(tmp_path: Path, cytube: FakeCytube) -> None:
    async with FakeLLM("ollama") as llm:
        raw = config(tmp_path, cytube.url, {"ollama_host": llm.url})
        raw["user"] = [BOT, "wrong"]
        got = by_name(await run(tmp_path, raw))
        login = got["login"]
        assert not login.ok
        assert "Invalid username/password combination" in login.detail
        assert "ROSEY_PASSWORD" in login.fix
        assert login.line().startswith("✘ login: ") and " — fix: " in login.line()
        assert "rank" not in got  # no rank without a login
        assert got["llm ollama llama3.2:3b"].ok  # the rest still ran


async def test_missing_ollama_model(tmp_path: Path, cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["qwen2.5:7b"]) as llm:
        got = by_name(await run(tmp_path, config(tmp_path, cytube.url, {
            "ollama_host": llm.url, "model": "llama3.2:3b"})))
        model = got["llm ollama llama3.2:3b"]
        assert not model.ok and "not found" in model.detail and "qwen2.5:7b" in model.detail
        assert model.fix.startswith("run `ollama pull llama3.2:3b`")
        assert not got["llm test completion"].ok
        assert got["llm test completion"].detail == "skipped"
        assert llm.calls == 0  # no completion against a missing model
        assert got["login"].ok and got["socketconfig"].ok


async def test_bad_openai_key(tmp_path: Path, cytube: FakeCytube) -> None:
    async with FakeLLM("openai") as llm:
        llm.api_key = KEY
        got = by_name(await run(tmp_path, config(tmp_path, cytube.url, {
            "provider": "openai", "model": "gpt-4o-mini", "openai_api_key": "sk-bad"},
            providers={"openai": {"base_url": llm.url}})))
        key = got["llm openai gpt-4o-mini"]
        assert not key.ok and "API key rejected" in key.detail
        assert "OPENAI_API_KEY" in key.fix
        assert got["login"].ok


async def test_unreachable_cytube_host(tmp_path: Path) -> None:
    async with FakeLLM("ollama") as llm:
        url = f"http://127.0.0.1:{closed_port()}"
        checks = await run(tmp_path, config(tmp_path, url, {"ollama_host": llm.url}))
        got = by_name(checks)
        assert not got["socketconfig"].ok
        assert "cannot reach" in got["socketconfig"].detail
        assert "check `domain`" in got["socketconfig"].fix
        assert "login" not in got  # nothing to log in to
        assert got["llm ollama llama3.2:3b"].ok and got["llm test completion"].ok


async def test_unreachable_ollama_host(tmp_path: Path, cytube: FakeCytube) -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    got = by_name(await run(tmp_path, config(tmp_path, cytube.url, {"ollama_host": host})))
    reach = got["llm ollama llama3.2:3b"]
    assert not reach.ok and "unreachable" in reach.detail
    assert "OLLAMA_HOST" in reach.fix and "ollama serve" in reach.fix
    assert got["login"].ok


async def test_running_bot_is_not_kicked(tmp_path: Path, cytube: FakeCytube) -> None:
    cytube.add_virtual_user(BOT, rank=2)  # the live bot is already in the channel
    async with FakeLLM("ollama") as llm:
        got = by_name(await run(tmp_path, config(tmp_path, cytube.url, {"ollama_host": llm.url})))
    assert got["login"].ok and "already in testchan" in got["login"].detail
    assert got["rank"].detail.startswith("2 (moderator)")
    assert not any(event == "login" for _, event, _ in cytube.frames_from_clients)
    assert BOT in cytube.usernames


def test_rank_implications() -> None:
    leader = rank_check(1.5, True, (4, 1), BOT)
    assert leader.ok and leader.detail.startswith("1.5 (leader)")
    assert "/kick" in leader.detail and "escapes a leading `/`" in leader.detail
    assert "antiflood is on (burst 4, 1/s)" in leader.detail
    user = rank_check(1, None, (4, 1), BOT)
    assert "ignored" in user.detail and f"/rank {BOT} 2" in user.detail
    guest = rank_check(0, None, (4, 1), BOT)
    assert guest.detail.startswith("0 (guest)") and "60 s" in guest.detail
    assert not rank_check(-1, None, (4, 1), BOT).ok


async def _cli(config_path: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ROSEY_", "OPENAI_", "OLLAMA_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rosey.cli.main", "--config", str(config_path), "doctor",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_cli_exit_codes(tmp_path: Path, cytube: FakeCytube) -> None:
    async with FakeLLM("ollama") as llm:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config(tmp_path, cytube.url, {"ollama_host": llm.url})))
        code, out = await _cli(path)
        assert code == 0, out
        assert out.count("✔ ") == 6 and "✘" not in out
        await cytube.wait_for(lambda: BOT not in cytube.usernames)
        llm.models = ["other:latest"]
        code, out = await _cli(path)
        assert code == 1, out
        assert "✘ llm ollama llama3.2:3b:" in out and "ollama pull llama3.2:3b" in out


async def test_a_registered_guest_name_gets_the_fix_conn_logs(tmp_path: Path,
                                                              cytube: FakeCytube) -> None:
    from rosey.conn import refusals

    async with FakeLLM("ollama") as llm:
        raw = config(tmp_path, cytube.url, {"ollama_host": llm.url})
        raw["user"] = ["RoseyBot", ""]  # a guest with the account's name, in another case
        got = by_name(await run(tmp_path, raw))
    login = got["login"]
    assert not login.ok and login.detail == "RoseyBot: That username is registered."
    names = refusals.Names(name="RoseyBot", domain=cytube.url, channel="testchan")
    assert login.fix == refusals.fix("registered_name", names)
    # the same words as the line conn logs when it stops
    assert f"— fix: {login.fix}" in refusals.stopped_line("registered_name", "x", names)
    assert login.line().endswith(f" — fix: {login.fix}")


async def test_each_channel_is_checked_and_named(tmp_path: Path, cytube: FakeCytube) -> None:
    cytube.ban_name(BOT, channel="anime")
    async with FakeLLM("ollama") as llm:
        raw = config(tmp_path, cytube.url, {"ollama_host": llm.url})
        del raw["channel"]
        raw["channels"] = [{"channel": "testchan"}, {"channel": "anime"}]
        got = by_name(await run(tmp_path, raw))
    assert got["testchan: login"].ok and got["testchan: rank"].ok
    assert got["testchan: socketconfig"].ok and got["anime: socketconfig"].ok
    banned = got["anime: login"]
    assert not banned.ok and "banned" in banned.detail
    names = refusals.Names(name=BOT, domain=cytube.url, channel="anime")
    assert banned.fix == refusals.fix("channel_ban", names)  # conn's words, its channel
    assert "anime: rank" not in got
