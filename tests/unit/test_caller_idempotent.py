"""A caller is idempotent by request id: a restarted router re-dispatches what its journal
holds, possibly to the caller still running it or that already answered its predecessor."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec

from rosey.caller.base import Completion, LLMError
from rosey.caller.service import CallerService
from rosey.config import parse_config
from rosey.protocol import Request, Result, Turn, decode


class SlowBackend:
    name = "fake"

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def complete(self, turns: list[Turn], model: str, timeout: float) -> Completion:
        self.calls += 1
        await self.release.wait()
        return Completion("hi", 1, 1, model)


class Sock:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)


async def test_a_re_dispatched_request_is_run_once_and_its_result_sent_again() -> None:
    cfg = parse_config({"channel": "c", "user": ["bot", ""],
                        "llm": {"provider": "ollama", "model": "m"}},
                       base_dir=Path("/tmp"), env={})
    backend = SlowBackend()
    service = CallerService(cfg, 0, backend_factory=lambda p, url: backend)  # type: ignore[arg-type,return-value]
    sock: Any = Sock()
    service.sock = sock
    request = Request(id="r1", deadline=time.time() + 30, provider="ollama", model="m",
                      turns=[Turn("user", "alice: hi")])
    await service.take(request)
    await asyncio.sleep(0.05)
    await service.take(request)  # the new router's re-dispatch while we still run it
    await asyncio.sleep(0.05)
    assert backend.calls == 1 and sock.sent == []
    backend.release.set()
    deadline = asyncio.get_running_loop().time() + 5
    while not sock.sent:
        assert asyncio.get_running_loop().time() < deadline, "the service never answered"
        await asyncio.sleep(0.01)
    await service.take(request)  # again after answering: the same Result, no new call
    assert backend.calls == 1 and len(sock.sent) == 2 and sock.sent[0] == sock.sent[1]
    result = decode(sock.sent[0])
    assert isinstance(result, Result) and result.ok and result.text == "hi"


class DeadHost:
    name = "dead"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, turns: list[Turn], model: str, timeout: float) -> Completion:
        self.calls += 1
        raise LLMError("connection", "cannot connect to http://a:11434")


async def test_a_handed_back_request_runs_again_on_the_next_endpoint() -> None:
    endpoints = [{"name": "a", "url": "http://a:11434", "capacity": 2},
                 {"name": "b", "url": "http://b:11434", "capacity": 2}]
    cfg = parse_config({"channel": "c", "user": ["bot", ""],
                        "llm": {"provider": "ollama", "model": "m"},
                        "providers": {"ollama": {"endpoints": endpoints}}},
                       base_dir=Path("/tmp"), env={})
    dead, alive = DeadHost(), SlowBackend()
    alive.release.set()
    hosts: dict[str, Any] = {"http://a:11434": dead, "http://b:11434": alive}
    service = CallerService(cfg, 0, backend_factory=lambda p, url: hosts[url])
    sock: Any = Sock()
    service.sock = sock
    request = Request(id="r1", deadline=time.time() + 30, provider="ollama", model="m",
                      turns=[Turn("user", "alice: hi")], endpoint="a",
                      endpoint_url="http://a:11434", hand_back=True)
    await service.handle(request)
    first = decode(sock.sent[-1])
    assert isinstance(first, Result) and not first.ok and first.endpoint_failed
    assert first.endpoint == "a" and dead.calls == 1  # no retry on the dead host
    await service.take(msgspec.structs.replace(request, endpoint="b",
                                               endpoint_url="http://b:11434", hand_back=False))
    deadline = asyncio.get_running_loop().time() + 5
    while len(sock.sent) < 2:
        assert asyncio.get_running_loop().time() < deadline, "the service never answered"
        await asyncio.sleep(0.01)
    second = decode(sock.sent[-1])
    assert isinstance(second, Result) and second.ok and second.endpoint == "b"
    assert (dead.calls, alive.calls) == (1, 1)
