"""Streamed calls: both SDKs against fakes that stream like the real servers, and the
caller's rule that retries and failover happen only before a piece has been sent."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from fakes.llm import FakeLLM, Kind, tokens_of
from rosey.caller.base import Backend, LLMError, make_backend
from rosey.caller.policy import RetryPolicy
from rosey.caller.providers import ProviderChain, Target
from rosey.caller.service import PartialSink
from rosey.protocol import Partial, Request, Turn

pytestmark = pytest.mark.integration  # the fake model servers on loopback

KINDS: list[Kind] = ["openai", "ollama"]
MODEL = {"openai": "gpt-4o-mini", "ollama": "llama3.2:3b"}
TURNS = [Turn("system", "Be brief."), Turn("user", "alice: tell me about 2001")]
ANSWER = ("It is a 1968 film by Stanley Kubrick about a voyage to Jupiter. HAL is the "
          "computer. It still looks great today! Watch it on a big screen.")


def build(kind: Kind, url: str) -> Backend:
    if kind == "openai":
        return make_backend("openai", api_key="sk-test", base_url=url)
    return make_backend("ollama", host=url)


@pytest.fixture(params=KINDS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeLLM]:
    async with FakeLLM(request.param, reply=ANSWER) as server:
        yield server


async def test_stream_delivers_tokens_as_they_come_and_usage_at_the_end(fake: FakeLLM) -> None:
    fake.token_rate = 200.0
    backend = build(fake.kind, fake.url)
    got: list[tuple[float, str]] = []

    async def on_text(delta: str) -> None:
        got.append((time.monotonic(), delta))

    try:
        done = await backend.stream(TURNS, MODEL[fake.kind], 10.0, on_text)
    finally:
        await backend.aclose()
    assert done.text == ANSWER == "".join(d for _, d in got)
    assert len(got) == len(tokens_of(ANSWER)) > 20  # one delta per token, not one lump
    assert got[-1][0] - got[0][0] > 0.05  # spread over the stream, as paced
    assert done.completion_tokens == len(tokens_of(ANSWER))
    assert done.prompt_tokens == sum(len(t.content.split()) for t in TURNS)
    body = fake.requests[-1]
    assert body["stream"] is True
    if fake.kind == "openai":
        assert body["stream_options"] == {"include_usage": True}
    assert fake.streams == 1


@pytest.mark.parametrize("mode", ["drop", "error"])
async def test_a_stream_that_breaks_raises_a_classified_error(fake: FakeLLM, mode: str) -> None:
    fake.break_after, fake.break_mode = 5, mode  # type: ignore[assignment]
    backend = build(fake.kind, fake.url)
    got: list[str] = []

    async def on_text(delta: str) -> None:
        got.append(delta)

    try:
        with pytest.raises(LLMError) as info:
            await backend.stream(TURNS, MODEL[fake.kind], 10.0, on_text)
    finally:
        await backend.aclose()
    assert "".join(got) == "".join(tokens_of(ANSWER)[:5])  # what came before the break
    assert info.value.kind == ("server" if mode == "error" else "connection")
    assert info.value.retryable


def request(deadline_in: float, provider: str = "ollama", model: str = "llama3.2:3b") -> Request:
    return Request(id="r1", deadline=time.time() + deadline_in, provider=provider, model=model,
                   turns=TURNS)


def chain_for(backends: dict[str, Backend], chain: list[Target],
               first_token: float = 0.0) -> ProviderChain:
    return ProviderChain(chain, lambda provider, url: backends[provider],
                          policy=RetryPolicy(base_delay=0.01, jitter=0.0), clock=time.time,
                          rng=lambda: 0.5, streams=lambda provider: True,
                          first_token=first_token)


def sink_for(req: Request) -> tuple[PartialSink, list[Partial]]:
    sent: list[Partial] = []

    async def send(partial: Partial) -> None:
        sent.append(partial)

    return PartialSink(req, "caller-0", send), sent


async def test_failure_before_any_piece_is_retried_and_after_one_is_not() -> None:
    async with FakeLLM("ollama", reply=ANSWER) as fake:
        fake.token_rate = 500.0
        backend = build("ollama", fake.url)
        providers = chain_for({"ollama": backend}, [Target("ollama", "llama3.2:3b")])
        try:
            # Breaks after 3 tokens, before the first sentence ends: nothing was sent, so
            # the caller retries and the second attempt streams the whole answer.
            fake.break_after, fake.break_times = 3, 1
            req = request(10.0)
            sink, sent = sink_for(req)
            out = await providers.call(req, sink)
            assert out.completion is not None and out.completion.text == ANSWER
            assert out.calls == 2 and out.streamed
            assert [p.seq for p in sent] == list(range(len(sent))) and len(sent) == 3
            assert "".join(p.text for p in sent) == ANSWER[:len("".join(p.text for p in sent))]
            # Breaks after the first sentence was sent: no second attempt, no repeated text.
            fake.break_after, fake.break_times = 17, None  # inside the second sentence
            calls = fake.calls
            req = request(10.0)
            sink, sent = sink_for(req)
            out = await providers.call(req, sink)
            assert out.error is not None and out.error.kind == "connection"
            assert out.completion is None and out.streamed
            assert fake.calls == calls + 1
            assert [p.text.strip() for p in sent] == [
                "It is a 1968 film by Stanley Kubrick about a voyage to Jupiter."]
        finally:
            await backend.aclose()


async def test_first_token_deadline_fails_over_before_anything_is_posted() -> None:
    async with FakeLLM("ollama", reply=ANSWER) as slow, \
            FakeLLM("openai", reply=ANSWER) as fast:
        slow.first_token_delay = 5.0
        backends = {"ollama": build("ollama", slow.url), "openai": build("openai", fast.url)}
        chain = [Target("ollama", "llama3.2:3b"), Target("openai", "gpt-4o-mini")]
        providers = chain_for(backends, chain, first_token=0.3)
        try:
            req = request(20.0)
            sink, sent = sink_for(req)
            started = time.monotonic()
            out = await providers.call(req, sink)
            took = time.monotonic() - started
            assert out.completion is not None and out.target.provider == "openai"
            assert [a.outcome for a in out.attempts] == ["timeout", "ok"]
            assert 0.3 <= took < 2.0  # not the 5 s the first provider would take
            assert sent and sent[0].seq == 0
        finally:
            for b in backends.values():
                await b.aclose()


async def test_the_deadline_bounds_the_whole_streamed_answer() -> None:
    async with FakeLLM("openai", reply=ANSWER * 3) as fake:
        fake.token_rate = 40.0  # ~100 tokens: 2.5 s, longer than the deadline
        backend = build("openai", fake.url)
        providers = chain_for({"openai": backend}, [Target("openai", "gpt-4o-mini")])
        try:
            req = request(1.0, "openai", "gpt-4o-mini")
            sink, sent = sink_for(req)
            started = time.monotonic()
            out = await providers.call(req, sink)
            assert time.monotonic() - started < 1.6
            assert out.error is not None and out.error.kind == "timeout"
            assert sent and out.streamed and out.calls == 1  # pieces went; no retry
        finally:
            await backend.aclose()


async def test_the_fakes_stream_the_real_wire_formats() -> None:
    """OpenAI: SSE ``data:`` events, a role chunk first, the usage chunk (``choices: []``)
    last before ``[DONE]``.  Ollama: NDJSON, ``done: true`` and eval counts on the last."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}],
            "stream": True, "stream_options": {"include_usage": True}}
    async with FakeLLM("openai", reply="Hi there.") as fake, aiohttp.ClientSession() as http, \
                http.post(f"{fake.url}/chat/completions", json=body) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = [e for e in (await resp.text()).split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1]) == \
        "Hi there."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert all(c["usage"] is None for c in chunks[:-1])
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}]}
    async with FakeLLM("ollama", reply="Hi there.") as fake, aiohttp.ClientSession() as http, \
                http.post(f"{fake.url}/api/chat", json=body) as resp:
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert [line["done"] for line in lines] == [False, False, False, True]
    assert "".join(line["message"]["content"] for line in lines) == "Hi there."
    assert lines[-1]["eval_count"] == 3 and lines[-1]["done_reason"] == "stop"
    assert "prompt_eval_count" in lines[-1] and "eval_count" not in lines[0]
