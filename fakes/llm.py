"""A fake LLM server speaking OpenAI's or Ollama's real JSON, on 127.0.0.1.

    async with FakeLLM("ollama", models=["llama3.2:3b"]) as fake:
        backend = OllamaBackend(host=fake.url)
        fake.fail_status, fake.fail_times = 500, 1   # next call fails, the one after works
        ...
        fake.requests[-1]["messages"]              # the JSON body the chat endpoint got

Endpoints
    openai: POST /v1/chat/completions, GET /v1/models   (``url`` is the base_url, with /v1)
    ollama: POST /api/chat, GET /api/tags, GET /api/version, GET /   (``url`` is the host)

Knobs (plain attributes, change them between calls): ``reply`` (str or callable(body) ->
str), ``delay`` (s before answering), ``fail_status`` (+ ``retry_after`` for 429,
``fail_times`` = fail only the next N chat calls; None = always), ``hang`` (never answer
until stop()), ``malformed`` ("json": invalid JSON; "shape": JSON without
choices / message), ``empty`` (empty content), ``api_key`` (when set, requests without
``Authorization: Bearer <api_key>`` get 401 on every endpoint), ``models``.

Streaming (``"stream": true`` in the body; Ollama streams unless told not to) is sent the
way the real servers send it: OpenAI as SSE ``data:`` chunks (a role chunk, one chunk per
token, a ``finish_reason`` chunk, then with ``stream_options.include_usage`` a
``choices: []`` chunk carrying the usage, then ``data: [DONE]``); Ollama as NDJSON lines,
the last with ``done: true`` and the eval counts.  Headers and the first chunk go out
together after ``first_token_delay`` s, then a token every 1/``token_rate`` s (0: all at
once); unstreamed, the whole answer comes when its last token would have.  Tokens are
words with their leading space and each punctuation mark alone, as a BPE tokenizer cuts
them.  ``break_after`` = N tokens, then ``break_mode``: "drop" (the connection is cut
mid-body), "error" (an in-band error object, as both servers send one) or "hang" (nothing
more until stop()); ``break_times`` = break only the next N streams (None: every one).
``token_log`` holds ``(time.time(), token)`` of the last streamed answer, for benches
that need when a sentence was complete at the provider.

Capacity, as a GPU box has (per instance): ``max_concurrency`` chat calls run at once (None:
no limit); the excess waits in arrival order, up to ``max_queue`` waiting (None: any number),
beyond which a call gets 503 at once, as Ollama answers past OLLAMA_MAX_QUEUE.  ``in_flight``,
``peak_in_flight``, ``served`` (chat calls answered 200) and ``rejected`` (503 for a full
queue) count them.  Latency is ``delay`` (fixed, per call) or ``first_token_delay`` +
``token_rate`` (per token), and is spent holding a slot.  ``kill()`` is a crashed host: the
port closes and every open connection is cut, no answer; ``restart()`` listens again on the
same port.

Records, one entry per chat call in parallel lists: ``requests`` (JSON bodies),
``request_headers`` (lowercase names; a caller names itself in ``x-rosey-caller``) and
``received_at`` (wall clock on arrival, for latency benches); ``calls`` counts them.

The wire formats (bodies, errors, token cuts) are in fakes/llm_wire.py, the command line in
fakes/llm_cli.py.  Standalone (for e2e tests that need a separate process):
    python -m fakes.llm --kind ollama --port 0 --delay 0 [--reply TEXT]
prints ``READY <url>`` and serves until SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal, Self

from aiohttp import web

from fakes import llm_wire as wire
from fakes.llm_wire import DEFAULT_MODEL, error_response, tagged, tokens_of

__all__ = ["BUSY", "FakeLLM", "Kind", "Reply", "default_reply", "tokens_of"]

Kind = Literal["openai", "ollama"]
Reply = str | Callable[[dict[str, Any]], str]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BUSY = "server busy, please try again.  maximum pending requests exceeded"  # Ollama's 503


def default_reply(body: dict[str, Any]) -> str:
    users = [
        m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"
    ]
    last = users[-1].get("content", "") if users else ""
    return f"reply to: {last}"


class FakeLLM:
    def __init__(
        self,
        kind: Kind = "openai",
        *,
        models: list[str] | None = None,
        reply: Reply = default_reply,
        port: int = 0,
    ) -> None:
        if kind not in ("openai", "ollama"):
            raise ValueError(f"kind must be 'openai' or 'ollama', not {kind!r}")
        self.kind: Kind = kind
        self.models: list[str] = list(models if models is not None else [DEFAULT_MODEL[kind]])
        self.reply: Reply = reply
        self.delay: float = 0.0
        self.fail_status: int | None = None
        self.fail_times: int | None = None
        self.retry_after: float | str | None = None
        self.hang: bool = False
        self.malformed: Literal["json", "shape"] | bool | None = None
        self.empty: bool = False
        self.api_key: str | None = None
        self.token_rate: float = 0.0  # streamed tokens per second; 0: all at once
        self.first_token_delay: float = 0.0
        self.break_after: int | None = None
        self.break_mode: Literal["drop", "error", "hang"] = "drop"
        self.break_times: int | None = None  # break only the next N streams; None: all
        self.token_log: list[tuple[float, str]] = []
        self.streams = 0  # chat calls answered as a stream
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []  # parallel to requests; lowercase keys
        self.received_at: list[float] = []  # parallel to requests; time.time() on arrival
        self.calls = 0  # chat calls received, failed or not
        self.max_concurrency: int | None = None
        self.max_queue: int | None = None
        self.in_flight = 0
        self.peak_in_flight = 0
        self.served = 0  # chat calls answered 200 (streamed or not)
        self.rejected = 0  # chat calls turned away with 503: the queue was full
        self._waiting = 0
        self._slots_free = asyncio.Condition()
        self._open: dict[int, web.BaseRequest] = {}  # chat calls in progress (kill cuts them)
        self._port = port
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.url = ""

    # ---- lifecycle ------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application()
        if self.kind == "openai":
            chat = self._slotted(partial(wire.openai_chat, self))
            app.router.add_post("/v1/chat/completions", chat)
            app.router.add_get("/v1/models", partial(wire.openai_models, self))
        else:
            app.router.add_post("/api/chat", self._slotted(partial(wire.ollama_chat, self)))
            app.router.add_get("/api/tags", partial(wire.ollama_tags, self))
            app.router.add_get("/api/version", partial(wire.ollama_version, self))
            app.router.add_get("/", partial(wire.ollama_root, self))
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._port = self._runner.addresses[0][1]  # a restart listens here again
        self.url = f"http://127.0.0.1:{port}" + ("/v1" if self.kind == "openai" else "")
        return self

    async def stop(self) -> None:
        self._stopping.set()  # releases hanging and delayed handlers
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def kill(self) -> None:
        """A crashed host: every open connection is cut without an answer, the port closes."""
        for request in list(self._open.values()):
            if request.transport is not None:
                request.transport.abort()
        await self.stop()

    async def restart(self) -> Self:
        """Listen again on the port of the last start (counters and records kept)."""
        if self._runner is not None:
            await self.stop()
        return await self.start()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- shared behaviour -------------------------------------------------------

    def _slotted(self, handler: Handler) -> Handler:
        """The chat endpoint behind the capacity: a slot held for the whole answer."""

        async def run(request: web.Request) -> web.StreamResponse:
            if self.max_concurrency is not None and self.in_flight >= self.max_concurrency \
                    and self.max_queue is not None and self._waiting >= self.max_queue:
                self.calls += 1
                self.rejected += 1
                return self._error(503, BUSY)
            self._open[id(request)] = request
            try:
                async with self._slots_free:
                    self._waiting += 1
                    try:
                        await self._slots_free.wait_for(lambda: self.max_concurrency is None
                                                        or self.in_flight < self.max_concurrency)
                    finally:
                        self._waiting -= 1
                    self.in_flight += 1
                    self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    response = await handler(request)
                finally:
                    async with self._slots_free:
                        self.in_flight -= 1
                        self._slots_free.notify_all()
                if response.status == 200:
                    self.served += 1
                return response
            finally:
                self._open.pop(id(request), None)

        return run

    def _authorized(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == (
            f"Bearer {self.api_key}"
        )

    async def _receive(self, request: web.Request) -> dict[str, Any] | web.Response:
        """Record the chat request; return its body, or the error response to send."""
        arrived = time.time()
        self.calls += 1
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_unparseable": raw.decode("utf-8", "replace")}
        self.requests.append(body)
        self.request_headers.append({k.lower(): v for k, v in request.headers.items()})
        self.received_at.append(arrived)
        if self.hang:
            await self._stopping.wait()
            raise web.HTTPServiceUnavailable()
        if self.delay > 0:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.delay)
                raise web.HTTPServiceUnavailable()
            except TimeoutError:
                pass
        if not self._authorized(request):
            return self._error(401, "invalid api key")
        if self.fail_status is not None and (self.fail_times is None or self.fail_times > 0):
            if self.fail_times is not None:
                self.fail_times -= 1
            return self._error(self.fail_status, f"fake failure {self.fail_status}")
        if not isinstance(body, dict) or "_unparseable" in body:
            return self._error(400, "request body is not JSON")
        model = body.get("model")
        if not self._has_model(model):
            return self._error(404, f"model {model!r} not found", model=str(model))
        return body

    def _has_model(self, model: object) -> bool:
        if self.kind == "openai":
            return model in self.models
        return tagged(model) in {tagged(name) for name in self.models}

    def _text(self, body: dict[str, Any]) -> str:
        if self.empty:
            return ""
        text = self.reply(body) if callable(self.reply) else self.reply
        # Real servers stop at the length cap (doctor's one-token probe relies on it).
        options = body.get("options")
        cap = body.get("max_tokens") or body.get("max_completion_tokens") or (
            options.get("num_predict") if isinstance(options, dict) else None)
        if isinstance(cap, int) and cap > 0:
            text = "".join(tokens_of(text)[:cap])
        return text

    def _error(self, status: int, message: str, *, model: str = "") -> web.Response:
        return error_response(self.kind, status, message, model=model,
                              retry_after=self.retry_after)

    def _malformed(self, good: dict[str, Any]) -> web.Response | None:
        if not self.malformed:
            return None
        if self.malformed == "shape":
            shaped = {k: v for k, v in good.items() if k not in ("choices", "message")}
            return web.json_response(shaped)
        return web.Response(
            text='{"id": "chatcmpl-fake", "choices": [', content_type="application/json"
        )

    # ---- streaming clock (the wire formats' handlers hand it their chunks) --------

    async def _stream(self, request: web.Request, content_type: str, head: bytes,
                      tokens: list[tuple[str, bytes]], tail: list[bytes],
                      error: bytes) -> web.StreamResponse:
        """Headers and the first chunk after ``first_token_delay``, then one token per
        1/``token_rate`` s, then ``tail``; ``break_after`` cuts it short."""
        self.streams += 1
        self.token_log = []
        if self.first_token_delay > 0 and await self._stopped_within(self.first_token_delay):
            raise web.HTTPServiceUnavailable()
        response = web.StreamResponse(headers={"Content-Type": content_type})
        try:
            return await self._send_stream(request, response, head, tokens, tail, error)
        except ConnectionError:  # the client went away mid-stream (killed, or timed out)
            return response

    async def _send_stream(self, request: web.Request, response: web.StreamResponse,
                           head: bytes, tokens: list[tuple[str, bytes]], tail: list[bytes],
                           error: bytes) -> web.StreamResponse:
        await response.prepare(request)
        if head:
            await response.write(head)
        started = time.monotonic()
        for index, (token, data) in enumerate(tokens):
            if self.break_after is not None and index >= self.break_after and \
                    (self.break_times is None or self.break_times > 0):
                if self.break_times is not None:
                    self.break_times -= 1
                return await self._break(request, response, error)
            if self.token_rate > 0 and index > 0:
                due = started + index / self.token_rate - time.monotonic()
                if due > 0 and await self._stopped_within(due):
                    return response
            self.token_log.append((time.time(), token))
            await response.write(data)
        for data in tail:
            await response.write(data)
        await response.write_eof()
        return response

    async def _generate(self, text: str) -> None:
        """Unstreamed, the answer comes when the last token would have been streamed."""
        seconds = self.first_token_delay
        if self.token_rate > 0:
            seconds += (len(tokens_of(text)) - 1) / self.token_rate
        if seconds > 0 and await self._stopped_within(seconds):
            raise web.HTTPServiceUnavailable()

    async def _break(self, request: web.Request, response: web.StreamResponse,
                     error: bytes) -> web.StreamResponse:
        if self.break_mode == "error":
            await response.write(error)
            await response.write_eof()
        elif self.break_mode == "hang":
            await self._stopping.wait()
        elif request.transport is not None:  # drop: the body ends mid-chunk
            request.transport.close()
        return response

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
            return True
        except TimeoutError:
            return False


if __name__ == "__main__":  # python -m fakes.llm: the standalone server (fakes/llm_cli.py)
    from fakes.llm_cli import main

    main()
