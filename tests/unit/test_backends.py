"""OpenAI and Ollama backends against the fake servers in fakes/llm.py."""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.llm import FakeLLM, Kind
from rosey.caller.base import Backend, LLMError, make_backend, parse_retry_after
from rosey.protocol import Turn

# The fake model servers on loopback, and import checks in subprocesses.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KINDS: list[Kind] = ["openai", "ollama"]
MODEL = {"openai": "gpt-4o-mini", "ollama": "llama3.2:3b"}
TURNS = [
    Turn("system", "You are Rosey, keep it short."),
    Turn("user", "alice: hi rosey"),
    Turn("assistant", "hi alice!"),
    Turn("user", "alice: what is 2+2"),
]


def build(kind: Kind, url: str, **kwargs: object) -> Backend:
    if kind == "openai":
        kwargs.setdefault("api_key", "sk-test")
        return make_backend("openai", base_url=url, **kwargs)
    return make_backend("ollama", host=url, **kwargs)


def closed_port_url(kind: Kind) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}" + ("/v1" if kind == "openai" else "")


@pytest.fixture(params=KINDS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeLLM]:
    async with FakeLLM(request.param) as server:
        yield server


@pytest.fixture
async def backend(fake: FakeLLM) -> AsyncIterator[Backend]:
    b = build(fake.kind, fake.url)
    yield b
    await b.aclose()


async def fails(backend: Backend, model: str, timeout: float = 2.0) -> LLMError:
    with pytest.raises(LLMError) as info:
        await backend.complete(TURNS, model, timeout)
    return info.value


# ---- success ------------------------------------------------------------------------


async def test_success_returns_text_tokens_and_sends_the_turns(
    fake: FakeLLM, backend: Backend
) -> None:
    done = await backend.complete(TURNS, MODEL[fake.kind], 2.0)

    assert done.text == "reply to: alice: what is 2+2"
    assert done.model == MODEL[fake.kind]
    # the fake counts whitespace words: prompt 6+3+2+4, completion 6
    assert (done.prompt_tokens, done.completion_tokens) == (15, 6)
    assert len(fake.requests) == 1
    body = fake.requests[0]
    assert body["model"] == MODEL[fake.kind]
    assert body["stream"] is False
    assert body["messages"] == [
        {"role": "system", "content": "You are Rosey, keep it short."},
        {"role": "user", "content": "alice: hi rosey"},
        {"role": "assistant", "content": "hi alice!"},
        {"role": "user", "content": "alice: what is 2+2"},
    ]


async def test_reply_knob_and_fail_times(fake: FakeLLM, backend: Backend) -> None:
    fake.reply = lambda body: f"{len(body['messages'])} messages"
    fake.fail_status, fake.fail_times = 500, 1

    first = await fails(backend, MODEL[fake.kind])
    second = await backend.complete(TURNS, MODEL[fake.kind], 2.0)

    assert first.kind == "server" and first.retryable
    assert second.text == "4 messages"
    assert fake.calls == 2  # the SDK did not retry on its own (max_retries=0)


async def test_openai_optional_parameters_are_sent_only_when_set() -> None:
    async with FakeLLM("openai") as fake:
        plain = build("openai", fake.url)
        tuned = build("openai", fake.url, max_tokens=120, temperature=0.5, organization="org-1")
        await plain.complete(TURNS, "gpt-4o-mini", 2.0)
        await tuned.complete(TURNS, "gpt-4o-mini", 2.0)
        await plain.aclose()
        await tuned.aclose()
    assert "max_tokens" not in fake.requests[0] and "temperature" not in fake.requests[0]
    assert "openai-organization" not in fake.request_headers[0]
    assert fake.requests[1]["max_tokens"] == 120
    assert fake.requests[1]["temperature"] == 0.5
    assert fake.request_headers[1]["openai-organization"] == "org-1"


async def test_ollama_options_and_keep_alive_are_sent() -> None:
    async with FakeLLM("ollama") as fake:
        b = build("ollama", fake.url, keep_alive="10m", options={"num_predict": 50, "seed": None})
        await b.complete(TURNS, "llama3.2:3b", 2.0)
        await b.aclose()
    assert fake.requests[0]["keep_alive"] == "10m"
    assert fake.requests[0]["options"] == {"num_predict": 50}


# ---- error classification ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (500, "server", True),
        (503, "server", True),
        (401, "auth", False),
        (403, "auth", False),
        (400, "internal", False),
    ],
)
async def test_http_status_maps_to_kind(
    fake: FakeLLM, backend: Backend, status: int, kind: str, retryable: bool
) -> None:
    fake.fail_status = status
    err = await fails(backend, MODEL[fake.kind])
    assert (err.kind, err.status, err.retryable) == (kind, status, retryable)
    assert fake.calls == 1


async def test_rate_limited_carries_retry_after(fake: FakeLLM, backend: Backend) -> None:
    fake.fail_status, fake.retry_after = 429, 7
    err = await fails(backend, MODEL[fake.kind])
    assert (err.kind, err.status, err.retry_after, err.retryable) == (
        "rate_limited",
        429,
        7.0,
        True,
    )

    fake.retry_after = None
    err = await fails(backend, MODEL[fake.kind])
    assert (err.kind, err.retry_after) == ("rate_limited", None)


async def test_unknown_model_is_not_found(fake: FakeLLM, backend: Backend) -> None:
    err = await fails(backend, "no-such-model")
    assert (err.kind, err.status, err.retryable) == ("not_found", 404, False)
    assert "no-such-model" in err.message
    # and the same backend still works for a model that exists
    assert (await backend.complete(TURNS, MODEL[fake.kind], 2.0)).text


async def test_hang_times_out_within_the_deadline(fake: FakeLLM, backend: Backend) -> None:
    fake.hang = True
    start = time.monotonic()
    err = await fails(backend, MODEL[fake.kind], timeout=0.3)
    elapsed = time.monotonic() - start
    assert err.kind == "timeout" and err.retryable
    assert 0.25 <= elapsed < 0.8
    # the paired positive case: a delay inside the deadline answers
    fake.hang, fake.delay = False, 0.1
    assert (await backend.complete(TURNS, MODEL[fake.kind], 1.0)).text


async def test_cancellation_is_not_swallowed(fake: FakeLLM, backend: Backend) -> None:
    fake.hang = True
    task = asyncio.create_task(backend.complete(TURNS, MODEL[fake.kind], 5.0))
    deadline = asyncio.get_running_loop().time() + 5
    while not fake.requests:
        assert asyncio.get_running_loop().time() < deadline, "the request never reached the fake"
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_refused_is_connection(kind: Kind) -> None:
    b = build(kind, closed_port_url(kind))
    start = time.monotonic()
    err = await fails(b, MODEL[kind])
    await b.aclose()
    assert (err.kind, err.status, err.retryable) == ("connection", None, True)
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize("malformed", ["json", "shape"])
async def test_malformed_is_bad_response(fake: FakeLLM, backend: Backend, malformed: str) -> None:
    fake.malformed = malformed  # type: ignore[assignment]
    err = await fails(backend, MODEL[fake.kind])
    assert (err.kind, err.retryable) == ("bad_response", True)


async def test_empty_content_is_empty(fake: FakeLLM, backend: Backend) -> None:
    fake.empty = True
    err = await fails(backend, MODEL[fake.kind])
    assert (err.kind, err.retryable) == ("empty", False)
    fake.empty = False
    assert (await backend.complete(TURNS, MODEL[fake.kind], 2.0)).text


# ---- check() ------------------------------------------------------------------------------


async def test_check_model_present_and_missing(fake: FakeLLM, backend: Backend) -> None:
    fake.models = [MODEL[fake.kind], "other-model"]
    ok = await backend.check(MODEL[fake.kind], timeout=2.0)
    missing = await backend.check("absent-model", timeout=2.0)

    assert ok.ok, ok.detail
    assert fake.url in ok.detail and MODEL[fake.kind] in ok.detail
    assert not missing.ok
    assert "absent-model not found" in missing.detail and "other-model" in missing.detail
    if fake.kind == "ollama":
        assert "ollama pull absent-model" in missing.detail
    assert "\n" not in ok.detail + missing.detail


async def test_ollama_check_resolves_latest_tag() -> None:
    async with FakeLLM("ollama", models=["qwen2.5"]) as fake:
        b = build("ollama", fake.url)
        assert (await b.check("qwen2.5")).ok
        assert (await b.check("qwen2.5:latest")).ok
        assert not (await b.check("qwen2.5:7b")).ok
        await b.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_check_unreachable_host(kind: Kind) -> None:
    b = build(kind, closed_port_url(kind))
    health = await b.check(MODEL[kind], timeout=2.0)
    await b.aclose()
    assert not health.ok
    assert "unreachable" in health.detail


@pytest.mark.parametrize("kind", KINDS)
async def test_check_bad_key(kind: Kind) -> None:
    async with FakeLLM(kind) as fake:
        fake.api_key = "right-key"
        if kind == "openai":
            bad, good = (
                build(kind, fake.url, api_key="wrong"),
                build(kind, fake.url, api_key="right-key"),
            )
        else:
            bad = build(kind, fake.url, headers={"Authorization": "Bearer wrong"})
            good = build(kind, fake.url, headers={"Authorization": "Bearer right-key"})
        rejected = await bad.check(MODEL[kind], timeout=2.0)
        accepted = await good.check(MODEL[kind], timeout=2.0)
        await bad.aclose()
        await good.aclose()
    assert not rejected.ok and "401" in rejected.detail
    assert accepted.ok, accepted.detail


async def test_check_times_out(fake: FakeLLM, backend: Backend) -> None:
    # /v1/models and /api/tags do not hang in the fake; point at a listener that never answers
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        url = f"http://127.0.0.1:{port}" + ("/v1" if fake.kind == "openai" else "")
        b = build(fake.kind, url)
        start = time.monotonic()
        health = await b.check(MODEL[fake.kind], timeout=0.3)
        await b.aclose()
    assert not health.ok and "0.3s" in health.detail
    assert time.monotonic() - start < 0.8


# ---- ambient environment and imports ------------------------------------------------------


async def test_ambient_env_does_not_override_explicit_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-junk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-junk")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-junk")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "X-Junk: 1\nAuthorization: Bearer sk-junk")
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-junk")
    async with FakeLLM("openai") as oa, FakeLLM("ollama") as ol:
        openai_backend = build("openai", oa.url, api_key="sk-explicit")
        ollama_backend = build("ollama", ol.url)
        assert (await openai_backend.complete(TURNS, "gpt-4o-mini", 2.0)).text
        assert (await ollama_backend.complete(TURNS, "llama3.2:3b", 2.0)).text
        await openai_backend.aclose()
        await ollama_backend.aclose()
    sent = oa.request_headers[0]
    assert sent["authorization"] == "Bearer sk-explicit"
    assert "openai-organization" not in sent and "openai-project" not in sent
    assert "x-junk" not in sent
    assert "authorization" not in ol.request_headers[0]


@pytest.mark.parametrize(
    ("provider", "kwargs", "loaded", "absent"),
    [
        ("ollama", {"host": "http://127.0.0.1:1"}, "ollama", "openai"),
        ("openai", {"api_key": "sk-x", "base_url": "http://127.0.0.1:1/v1"}, "openai", "ollama"),
    ],
)
def test_make_backend_imports_only_its_provider(
    provider: str, kwargs: dict[str, str], loaded: str, absent: str
) -> None:
    code = (
        "import sys, json\n"
        "import rosey.caller, rosey.caller.base\n"
        "before = sorted(m for m in ('openai', 'ollama') if m in sys.modules)\n"
        f"b = rosey.caller.make_backend({provider!r}, **{kwargs!r})\n"
        "print(json.dumps([before, 'openai' in sys.modules, 'ollama' in sys.modules, b.name]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OLLAMA_"))}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=20
    )
    assert out.returncode == 0, out.stderr
    before, has_openai, has_ollama, name = json.loads(out.stdout)
    assert before == []  # the package and base import no SDK
    assert name == provider
    assert {"openai": has_openai, "ollama": has_ollama} == {loaded: True, absent: False}


def test_make_backend_rejects_unknown_provider_and_empty_credentials() -> None:
    with pytest.raises(ValueError, match="unknown LLM provider"):
        make_backend("anthropic")
    with pytest.raises(ValueError, match="api_key"):
        make_backend("openai", api_key="")
    with pytest.raises(ValueError, match="host"):
        make_backend("ollama", host="")


def test_openai_max_tokens_field_depends_on_the_server() -> None:
    official = make_backend("openai", api_key="sk-x", max_tokens=10)
    compatible = make_backend("openai", api_key="sk-x", base_url="http://127.0.0.1:1/v1/")
    assert official.base_url == "https://api.openai.com/v1"  # type: ignore[attr-defined]
    assert official.max_tokens_field == "max_completion_tokens"  # type: ignore[attr-defined]
    assert compatible.base_url == "http://127.0.0.1:1/v1"  # type: ignore[attr-defined]
    assert compatible.max_tokens_field == "max_tokens"  # type: ignore[attr-defined]


def test_llm_error_retryable_and_retry_after_parsing() -> None:
    assert [LLMError(k, "x").retryable for k in ("timeout", "connection", "server")] == [True] * 3
    assert [LLMError(k, "x").retryable for k in ("auth", "not_found", "empty")] == [False] * 3
    assert not LLMError("rate_limited", "quota", retryable=False).retryable
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after({"retry-after": later}) or 0) <= 31


# ---- the fake as a separate process -----------------------------------------------------


async def test_standalone_fake_serves_until_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fakes.llm", "--kind", "ollama", "--port", "0",
        "--delay", "0", "--reply", "hello from afar",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().split()
        assert line[0] == "READY"
        b = build("ollama", line[1])
        assert (await b.complete(TURNS, "llama3.2:3b", 2.0)).text == "hello from afar"
        await b.aclose()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 5)
    assert code == 0


@pytest.mark.parametrize(
    ("llm", "fallbacks", "loaded"),
    [
        ({"provider": "ollama"}, [], ["ollama"]),
        ({"provider": "openai", "openai_api_key": "sk-x"}, [], ["openai"]),
        ({"provider": "ollama", "openai_api_key": "sk-x"},
         [{"provider": "openai", "model": "gpt-4o-mini"}], ["ollama", "openai"]),
    ],
)
def test_a_caller_imports_only_the_providers_of_its_chain(
    llm: dict[str, str], fallbacks: list[dict[str, str]], loaded: list[str], tmp_path: Path
) -> None:
    config = {"channel": "c", "user": ["bot", ""], "llm": llm,
              "providers": {"fallbacks": fallbacks}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    code = (
        "import sys, json\n"
        "from rosey.config import load_config\n"
        "from rosey.caller.service import CallerService\n"
        f"service = CallerService(load_config({str(tmp_path / 'config.json')!r}, env={{}}), 0)\n"
        "service.load_backends()\n"
        "print(json.dumps(sorted(m for m in ('openai', 'ollama') if m in sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "OLLAMA_"))}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == loaded


@pytest.mark.parametrize("kind", KINDS)
async def test_extra_headers_reach_the_provider(kind: Kind) -> None:
    async with FakeLLM(kind) as fake:
        b = build(kind, fake.url, headers={"X-Rosey-Caller": "caller-3"})
        assert (await b.complete(TURNS, MODEL[kind], 2.0)).text
        await b.aclose()
    assert fake.request_headers[0]["x-rosey-caller"] == "caller-3"


# ---- the caller's retry / failover loop over real HTTP ---------------------------------------


class _NoSleepClock:
    """Deadlines on a fixed clock; backoff sleeps are recorded, not waited."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


async def test_caller_retries_a_500_and_fails_over_a_hang_over_http() -> None:
    from rosey.caller.providers import ProviderChain, Target
    from rosey.protocol import Request

    async with FakeLLM("ollama") as ol, FakeLLM("openai") as oa:
        backends = {"ollama": build("ollama", ol.url), "openai": build("openai", oa.url)}
        clock = _NoSleepClock()
        chain = [Target("ollama", MODEL["ollama"], timeout=0.3), Target("openai", MODEL["openai"])]
        providers = ProviderChain(chain, lambda p, url: backends[p], clock=clock, sleep=clock.sleep,
                                  rng=lambda: 0.5)

        def request() -> Request:
            return Request(id="r", deadline=clock.now + 30, provider="ollama",
                           model=MODEL["ollama"], turns=TURNS)

        ol.fail_status, ol.fail_times = 500, 2
        out = await providers.call(request())
        assert out.completion is not None and out.target == chain[0]
        assert (ol.calls, oa.calls, clock.sleeps) == (3, 0, [0.2, 0.4])

        ol.hang = True  # the primary hangs: cut at its 0.3 s cap, then OpenAI answers
        out = await providers.call(request())
        assert [a.outcome for a in out.attempts] == ["timeout", "ok"]
        assert out.completion is not None and out.completion.text == "reply to: alice: what is 2+2"
        assert (ol.calls, oa.calls) == (4, 1)

        ol.hang, oa.fail_status = False, 401  # a bad key is not retried
        ol.fail_status, ol.fail_times = 404, None
        out = await providers.call(request())
        assert [(a.provider, a.outcome) for a in out.attempts] == [
            ("ollama", "not_found"), ("openai", "auth")]
        assert out.error is not None and out.error.kind == "auth"
        for b in backends.values():
            await b.aclose()
