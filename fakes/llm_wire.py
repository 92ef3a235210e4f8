"""The two wire formats FakeLLM speaks: OpenAI's and Ollama's chat, model-list and error
bodies, exactly as the real servers send them (fakes/llm.py holds the server itself: its
knobs, capacity, records and the streaming clock these handlers hand their chunks to).

Each handler takes the FakeLLM it serves for; FakeLLM.start routes the paths to them.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from fakes.llm import FakeLLM


async def openai_chat(fake: FakeLLM, request: web.Request) -> web.StreamResponse:
    got = await fake._receive(request)
    if isinstance(got, web.Response):
        return got
    text = fake._text(got)
    prompt_tokens = _count_tokens(got)
    completion_tokens = len(text.split())
    if got.get("stream"):
        return await openai_stream(fake, request, got, text, prompt_tokens)
    await fake._generate(text)
    body = {
        "id": f"chatcmpl-fake{fake.calls}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": got["model"],
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return fake._malformed(body) or web.json_response(body)


async def openai_stream(fake: FakeLLM, request: web.Request, got: dict[str, Any], text: str,
                         prompt_tokens: int) -> web.StreamResponse:
    base = {"id": f"chatcmpl-fake{fake.calls}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": got["model"],
            "system_fingerprint": "fp_fake"}
    with_usage = bool((got.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {**base, "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if with_usage:
            data["usage"] = None
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    tokens = tokens_of(text)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens),
             "total_tokens": prompt_tokens + len(tokens)}
    tail = [chunk({}, "stop")]
    if with_usage:
        tail.append(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode()
                    + b"\n\n")
    tail.append(b"data: [DONE]\n\n")
    return await fake._stream(
        request, "text/event-stream; charset=utf-8",
        chunk({"role": "assistant", "content": "", "refusal": None}),
        [(tok, chunk({"content": tok})) for tok in tokens], tail,
        b'data: {"error": {"message": "The server had an error while processing your '
        b'request.", "type": "server_error", "param": null, "code": null}}\n\n')


async def openai_models(fake: FakeLLM, request: web.Request) -> web.Response:
    if not fake._authorized(request):
        return fake._error(401, "invalid api key")
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "fake"}
        for name in fake.models
    ]
    return web.json_response({"object": "list", "data": data})


async def ollama_chat(fake: FakeLLM, request: web.Request) -> web.StreamResponse:
    got = await fake._receive(request)
    if isinstance(got, web.Response):
        return got
    text = fake._text(got)
    prompt_tokens = _count_tokens(got)
    completion_tokens = len(text.split())
    final = {
        "model": got["model"],
        "created_at": _now_iso(),
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": "stop",
        "total_duration": 4_883_583_458,
        "load_duration": 1_334_875,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": 342_546_000,
        "eval_count": completion_tokens,
        "eval_duration": 4_535_599_000,
    }
    if got.get("stream", True):  # Ollama streams unless told otherwise
        # Streamed, the count is of the chunks sent: one token each.
        final["message"] = {"role": "assistant", "content": ""}
        final["eval_count"] = len(tokens_of(text))

        def line(token: str) -> bytes:
            return json.dumps({"model": got["model"], "created_at": _now_iso(),
                               "message": {"role": "assistant", "content": token},
                               "done": False}).encode() + b"\n"

        return await fake._stream(
            request, "application/x-ndjson", b"",
            [(tok, line(tok)) for tok in tokens_of(text)],
            [json.dumps(final).encode() + b"\n"],
            b'{"error":"an error was encountered while running the model"}\n')
    await fake._generate(text)
    return fake._malformed(final) or web.json_response(final)


async def ollama_tags(fake: FakeLLM, request: web.Request) -> web.Response:
    if not fake._authorized(request):
        return fake._error(401, "unauthorized")
    models = [
        {
            "name": tagged(name),
            "model": tagged(name),
            "modified_at": "2025-05-04T17:37:44.706015396-07:00",
            "size": 2019393189,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": ["llama"],
                "parameter_size": "3.2B",
                "quantization_level": "Q4_K_M",
            },
        }
        for name in fake.models
    ]
    return web.json_response({"models": models})


async def ollama_version(fake: FakeLLM, request: web.Request) -> web.Response:
    return web.json_response({"version": "0.6.3-fake"})


async def ollama_root(fake: FakeLLM, request: web.Request) -> web.Response:
    return web.Response(text="Ollama is running")


def error_response(kind: str, status: int, message: str, *, model: str = "",
                   retry_after: float | str | None = None) -> web.Response:
    """The error body each server really sends for ``status``."""
    headers = {}
    if status == 429 and retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if kind == "ollama":
        if status == 404 and model:
            message = f'model "{model}" not found, try pulling it first'
        return web.json_response({"error": message}, status=status, headers=headers)
    code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
    types = {
        401: "invalid_request_error",
        404: "invalid_request_error",
        429: "requests",
        500: "server_error",
    }
    if status == 404 and model:
        message = f"The model `{model}` does not exist or you do not have access to it."
    if status == 401:
        message = "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
    error = {
        "message": message,
        "type": types.get(status, "invalid_request_error"),
        "param": None,
        "code": code.get(status),
    }
    return web.json_response({"error": error}, status=status, headers=headers)

DEFAULT_MODEL: dict[str, str] = {"openai": "gpt-4o-mini", "ollama": "llama3.2:3b"}



def tagged(name: object) -> str:
    """Ollama's name for a model: ``name:latest`` unless a tag is given."""
    text = str(name)
    return text if ":" in text.rsplit("/", 1)[-1] else f"{text}:latest"


_TOKEN = re.compile(r"\s*[^\s.,!?;:…。！？]+|\s*[.,!?;:…。！？]|\s+$")



def tokens_of(text: str) -> list[str]:
    """Text cut as a BPE tokenizer would, roughly: " word" and each punctuation mark."""
    return _TOKEN.findall(text)



def _count_tokens(body: dict[str, Any]) -> int:
    """A deterministic stand-in for a tokenizer: whitespace words of every message."""
    messages = body.get("messages") or []
    return sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))



def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
