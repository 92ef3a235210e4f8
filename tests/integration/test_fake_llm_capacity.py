"""The fake model server's capacity (slots, a bounded queue, Ollama's 503) and kill/restart,
for the endpoint benches: the client is plain aiohttp, as the providers are."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from fakes.llm import BUSY, FakeLLM

BODY = {"model": "llama3.2:3b", "stream": False,
        "messages": [{"role": "user", "content": "hi"}]}


async def chat(fake: FakeLLM) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, \
            http.post(fake.url + "/api/chat", json=BODY) as r:
        return r.status, await r.json()


async def test_excess_calls_wait_for_a_slot() -> None:
    async with FakeLLM("ollama") as fake:
        fake.delay, fake.max_concurrency = 0.2, 2
        got = await asyncio.gather(*(chat(fake) for _ in range(5)))
    assert [status for status, _ in got] == [200] * 5
    assert fake.peak_in_flight == 2  # never more at once, and the slots were used
    assert (fake.served, fake.rejected, fake.in_flight) == (5, 0, 0)


async def test_a_full_queue_answers_503_like_ollama() -> None:
    async with FakeLLM("ollama") as fake:
        fake.delay, fake.max_concurrency, fake.max_queue = 0.3, 1, 1
        got = await asyncio.gather(*(chat(fake) for _ in range(3)))
    assert sorted(status for status, _ in got) == [200, 200, 503]
    assert [body for status, body in got if status == 503] == [{"error": BUSY}]
    assert (fake.served, fake.rejected, fake.calls) == (2, 1, 3)


async def test_kill_cuts_calls_in_flight_and_restart_serves_on_the_same_url() -> None:
    async with FakeLLM("ollama") as fake:
        fake.delay = 5
        url = fake.url
        pending = asyncio.ensure_future(chat(fake))
        await asyncio.sleep(0.2)
        assert fake.in_flight == 1
        await fake.kill()
        with pytest.raises(aiohttp.ClientError):  # cut, not answered
            await pending
        with pytest.raises(aiohttp.ClientError):  # and nothing listens
            await chat(fake)
        fake.delay = 0
        await fake.restart()
        assert fake.url == url
        status, body = await chat(fake)
    assert status == 200 and body["message"]["content"] == "reply to: hi"
    assert fake.served == 1 and fake.calls == 2
