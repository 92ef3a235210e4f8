"""The caller process: takes requests from the router, calls the provider, answers results.

Several requests run at once (``callers.slots``), so one slow model call does not
idle the process.  Every request gets exactly one Result, ok or classified error,
before its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from rosey import ipc, metrics
from rosey.config import Config
from rosey.lifecycle import run_until_signalled
from rosey.llm import make_backend
from rosey.llm.base import Backend, LLMError
from rosey.protocol import Heartbeat, Ready, Request, Result, encode

log = logging.getLogger("rosey.caller")
DEADLINE_MARGIN = 0.05  # leave time for the result to reach the router
HEALTH_RETRY = 30.0


def backend_kwargs(cfg: Config, provider: str) -> dict[str, Any]:
    """Every SDK argument explicitly, so ambient env never changes behaviour."""
    if provider == "openai":
        prov = cfg.providers.openai
        return {"api_key": cfg.llm.openai_api_key or "unused",
                "base_url": prov.base_url or None, "organization": prov.organization or None,
                "max_tokens": prov.max_tokens, "temperature": prov.temperature}
    oll = cfg.providers.ollama
    options: dict[str, Any] = {"temperature": oll.temperature, "num_predict": oll.max_tokens}
    if oll.num_ctx:
        options["num_ctx"] = oll.num_ctx
    return {"host": cfg.llm.ollama_host, "headers": dict(oll.headers) or None,
            "keep_alive": oll.keep_alive, "options": options}


class CallerService:
    def __init__(self, cfg: Config, index: int, clock: Callable[[], float] = time.time,
                 backend_factory: Callable[[str], Backend] | None = None):
        self.cfg = cfg
        self.name = f"caller-{index}"
        self.incarnation = uuid.uuid4().hex[:12]
        self.clock = clock
        self.slots = cfg.callers.slots
        self.busy = 0
        self._factory = backend_factory or (lambda p: make_backend(p, **backend_kwargs(cfg, p)))
        self._backends: dict[str, Backend] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.handled = 0

    async def drain(self) -> None:
        """Stop taking work (slots=0 tells the router) and finish what is in flight."""
        self.slots = 0
        with contextlib.suppress(Exception):
            await self.sock.send(encode(Heartbeat(caller=self.name, incarnation=self.incarnation,
                                                  slots=0, busy=self.busy)))
        if self._tasks:
            log.info("%s draining %d requests", self.name, len(self._tasks))
            await asyncio.wait(set(self._tasks), timeout=self.cfg.llm.response_timeout)
        log.info("%s stopped: %d requests handled", self.name, self.handled)

    def backend(self, provider: str) -> Backend:
        if provider not in self._backends:
            self._backends[provider] = self._factory(provider)
        return self._backends[provider]

    async def run(self) -> None:
        # Import the SDK and build the client before announcing slots: the import
        # takes ~1 s of CPU that would otherwise eat the first request's deadline.
        self.backend(self.cfg.llm.provider)
        ctx = zmq.asyncio.Context()
        self.sock = ipc.dealer_socket(ctx, ipc.endpoint(self.cfg.paths.run_dir, "work"),
                                      self.name)
        await self.sock.send(encode(Ready(caller=self.name, incarnation=self.incarnation,
                                              slots=self.slots)))
        log.info("%s up: incarnation %s, %d slots, provider %s", self.name, self.incarnation,
                 self.slots, self.cfg.llm.provider)
        loops = [asyncio.create_task(self._recv_loop()),
                 asyncio.create_task(self._heartbeat_loop()),
                 asyncio.create_task(self._health_loop()),
                 asyncio.create_task(metrics.watch_loop_lag(self.name))]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in [*loops, *self._tasks]:
                task.cancel()
            for backend in self._backends.values():
                with contextlib.suppress(Exception):
                    await backend.aclose()
            self.sock.close(linger=0)
            ctx.term()

    async def _recv_loop(self) -> None:
        while True:
            data = await self.sock.recv()
            msg = ipc.decode_or_count(data, "caller", log)
            if isinstance(msg, Request):
                task = asyncio.create_task(self.handle(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.callers.heartbeat_interval)
            await self.sock.send(encode(Heartbeat(
                caller=self.name, incarnation=self.incarnation, slots=self.slots,
                busy=self.busy)))

    async def _health_loop(self) -> None:
        provider, model = self.cfg.llm.provider, self.cfg.llm.model
        while True:
            health = await self.backend(provider).check(model)
            metrics.PROVIDER_UP.labels(provider).set(1 if health.ok else 0)
            (log.info if health.ok else log.error)("%s health: %s", self.name, health.detail)
            await asyncio.sleep(HEALTH_RETRY if not health.ok else HEALTH_RETRY * 10)

    async def handle(self, request: Request) -> None:
        self.busy += 1
        metrics.SLOTS_BUSY.set(self.busy)
        started = time.perf_counter()
        try:
            result = await self.call(request)
        except Exception as exc:  # a bug here must still answer the router
            log.exception("request %s crashed", request.id)
            result = Result(id=request.id, caller=self.name, ok=False, error_kind="internal",
                            error=str(exc)[:200])
        finally:
            self.busy -= 1
            metrics.SLOTS_BUSY.set(self.busy)
        result.latency = time.perf_counter() - started
        self.handled += 1
        outcome = "ok" if result.ok else result.error_kind
        metrics.LLM_REQUESTS.labels(request.provider, request.model, outcome).inc()
        metrics.LLM_LATENCY.labels(request.provider, request.model).observe(result.latency)
        log.info("request %s %s in %.3f s (%d+%d tokens)", request.id, outcome,
                 result.latency, result.prompt_tokens, result.completion_tokens)
        await self.sock.send(encode(result))

    async def call(self, request: Request) -> Result:
        backend = self.backend(request.provider)
        attempts = self.cfg.callers.max_attempts
        error = LLMError("internal", "no attempt made")
        for attempt in range(1, attempts + 1):
            remaining = request.deadline - self.clock() - DEADLINE_MARGIN
            if remaining <= 0:
                error = LLMError("timeout", "deadline passed before the call")
                break
            try:
                done = await backend.complete(request.turns, request.model, remaining)
            except LLMError as exc:
                error = exc
                if not exc.retryable or attempt == attempts:
                    break
                delay = min(exc.retry_after or 0.2 * 2 ** (attempt - 1), 5.0)
                delay *= random.uniform(0.8, 1.2)
                if self.clock() + delay >= request.deadline - DEADLINE_MARGIN:
                    break
                metrics.LLM_RETRIES.labels(request.provider, exc.kind).inc()
                await asyncio.sleep(delay)
                continue
            tokens = metrics.LLM_TOKENS
            tokens.labels(request.provider, request.model, "prompt").inc(done.prompt_tokens)
            tokens.labels(request.provider, request.model, "completion").inc(
                done.completion_tokens)
            return Result(id=request.id, caller=self.name, ok=True, text=done.text,
                          provider=request.provider, model=done.model or request.model,
                          prompt_tokens=done.prompt_tokens,
                          completion_tokens=done.completion_tokens)
        return Result(id=request.id, caller=self.name, ok=False, error_kind=error.kind,
                      error=error.message[:300], provider=request.provider, model=request.model)


def main_loop(cfg: Config, index: int) -> None:
    metrics.serve(f"caller-{index}", cfg.metrics.host, cfg.metrics.caller_base_port + index,
                  cfg.metrics.enabled)
    service = CallerService(cfg, index)
    run_until_signalled(service.run, service.drain)
