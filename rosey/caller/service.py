"""The caller process: takes requests from the router, calls the provider, answers results.

Several requests run at once (``callers.slots``), so one slow model call does not
idle the process.  Every request gets exactly one Result, ok or classified error,
before its deadline; retries, failover and breakers are ``rosey.caller.providers``'s.

Drain (SIGTERM, e.g. ``rosey scale`` stopping this member): announce ``slots=0`` so the
router sends nothing more, finish every request already here (including one that was on
the wire when the announcement went out), send their results, then exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import zmq
import zmq.asyncio

from rosey import ipc, metrics
from rosey.caller import make_backend
from rosey.caller.base import Backend
from rosey.caller.chunker import Chunker
from rosey.caller.policy import RetryPolicy
from rosey.caller.pricing import PriceTable
from rosey.caller.providers import ENDPOINT_KINDS, Breakers, ChainOutcome, ProviderChain, Target
from rosey.config import Config, provider_endpoints
from rosey.lifecycle import run_until_signalled, survive
from rosey.protocol import Heartbeat, Partial, Ready, Request, Result, encode

log = logging.getLogger("rosey.caller")
WARMUP_TIMEOUT = 5.0
HEALTH_RETRY = 30.0
# After the last in-flight call, wait this long for a request the router sent before it
# read our slots=0 heartbeat (an ipc round trip is well under 1 ms).
DRAIN_SETTLE = 0.1
CALLER_HEADER = "X-Rosey-Caller"
RESULT_LINGER_MS = 1000  # closing the socket waits this long for queued results to leave
RESULTS_KEPT = 256  # recent results, re-sent when a restarted router dispatches them again


def chain_from_config(cfg: Config) -> list[Target]:
    """``llm.provider``/``llm.model`` first, then ``providers.fallbacks`` in order."""
    first = Target(cfg.llm.provider, cfg.llm.model, cfg.providers.primary_timeout)
    chain = [first]
    for entry in cfg.providers.fallbacks:
        target = Target(entry.provider, entry.model, entry.timeout)
        if target.key not in {t.key for t in chain}:
            chain.append(target)
    return chain


def providers_in_use(cfg: Config) -> list[str]:
    """The providers this caller imports at start-up (and only these: docs/DECISIONS.md)."""
    return list(dict.fromkeys(t.provider for t in chain_from_config(cfg)))


def endpoint_urls(cfg: Config, provider: str) -> list[str]:
    """The provider's endpoints' URLs in config order (the first is its default)."""
    if provider not in ("openai", "ollama"):
        return []
    return [e.url for e in provider_endpoints(cfg, provider)]  # type: ignore[arg-type]


def backend_kwargs(cfg: Config, provider: str, url: str = "") -> dict[str, Any]:
    """Every SDK argument explicitly, so ambient env never changes behaviour.  ``url``: the
    endpoint ("" : the provider's first)."""
    url = url or next(iter(endpoint_urls(cfg, provider)), "")
    if provider == "openai":
        prov = cfg.providers.openai
        return {"api_key": cfg.llm.openai_api_key or "unused",
                "base_url": url or None, "organization": prov.organization or None,
                "max_tokens": prov.max_tokens, "temperature": prov.temperature}
    oll = cfg.providers.ollama
    options: dict[str, Any] = {"temperature": oll.temperature, "num_predict": oll.max_tokens}
    if oll.num_ctx:
        options["num_ctx"] = oll.num_ctx
    return {"host": url, "headers": dict(oll.headers) or None,
            "keep_alive": oll.keep_alive, "options": options}


def streams(cfg: Config, provider: str) -> bool:
    """``providers.<name>.stream`` when set, else ``llm.stream``."""
    section = getattr(cfg.providers, provider, None)
    override = getattr(section, "stream", None)
    return cfg.llm.stream if override is None else bool(override)


class PartialSink:
    """Sends a streamed answer to the router as ``Partial`` pieces (``rosey.caller.chunker``)
    as they complete; ``committed`` once one has gone (no retry after that)."""

    def __init__(self, request: Request, caller: str,
                 send: Callable[[Partial], Awaitable[None]], provider: str = "") -> None:
        self.request = request
        self.caller = caller
        self.send = send
        self.provider = provider or request.provider
        self.chunker = Chunker()
        self.seq = 0
        self.committed = False

    def reset(self) -> None:
        self.chunker = Chunker()

    async def text(self, delta: str) -> None:
        for piece in self.chunker.feed(delta):
            await self.send(Partial(id=self.request.id, caller=self.caller, seq=self.seq,
                                    text=piece))
            self.seq += 1
            self.committed = True
            metrics.LLM_PARTIALS.labels(self.provider).inc()


class CallerService:
    """One caller process: its socket to the router, its slots, its provider clients."""

    def __init__(self, cfg: Config, index: int, clock: Callable[[], float] = time.time,
                 backend_factory: Callable[[str, str], Backend] | None = None):
        self.cfg = cfg
        self.name = f"caller-{index}"
        self.incarnation = uuid.uuid4().hex[:12]
        self.clock = clock
        self.slots = cfg.callers.slots
        self.busy = 0
        self._factory = backend_factory or self._make_backend
        # One client per (provider, endpoint URL), made on first use; only configured URLs
        # (a request naming another runs at the provider's default), so it stays small.
        self._backends: dict[tuple[str, str], Backend] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # A restarted router re-dispatches what its journal holds, possibly to us while we
        # still run it or after we answered its predecessor: idempotent by request id.
        self._running: set[str] = set()
        self._answered: OrderedDict[str, bytes] = OrderedDict()
        self.handled = 0
        self.draining = False
        self.providers_up = False
        self.chain = chain_from_config(cfg)
        self.prices = PriceTable(cfg.budget.prices)
        self._unpriced: set[str] = set()
        self.providers = ProviderChain(
            self.chain, self.backend,
            policy=RetryPolicy(max_attempts=cfg.callers.max_attempts),
            breakers=Breakers(cfg.providers.breaker_failures, cfg.providers.breaker_cooloff),
            clock=clock, rng=random.random, streams=lambda provider: streams(cfg, provider),
            first_token=cfg.llm.first_token_timeout)

    def _make_backend(self, provider: str, url: str) -> Backend:
        kwargs = backend_kwargs(self.cfg, provider, url)
        # Names the caller in the provider's (or a proxy's) request log.
        kwargs["headers"] = {**(kwargs.get("headers") or {}), CALLER_HEADER: self.name}
        return make_backend(provider, **kwargs)

    async def drain(self) -> None:
        """Stop taking work (slots=0 tells the router) and finish what is in flight."""
        self.slots = 0
        self.draining = True
        metrics.CALLER_DRAINING.set(1)
        with contextlib.suppress(Exception):
            await self.sock.send(encode(Heartbeat(caller=self.name, incarnation=self.incarnation,
                                                  slots=0)))
        # supervisord's stopwaitsecs is response_timeout + 5: every request here has a
        # deadline inside response_timeout, so this bound is only a backstop.
        loop = asyncio.get_running_loop()
        until = loop.time() + self.cfg.llm.response_timeout
        if self._tasks:
            log.info("%s draining %d requests", self.name, len(self._tasks))
        while loop.time() < until:
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=until - loop.time())
                continue
            await asyncio.sleep(DRAIN_SETTLE)
            if not self._tasks:
                break
        log.info("%s stopped: %d requests handled, %d unfinished", self.name, self.handled,
                 len(self._tasks))

    def backend(self, provider: str, url: str = "") -> Backend:
        """The client for ``provider`` at endpoint ``url`` ("" : its default)."""
        urls = endpoint_urls(self.cfg, provider)
        if url and urls and url not in urls:
            log.warning("%s: endpoint %s is not in the config; using %s", self.name, url,
                        urls[0])
            url = ""
        key = (provider, url or (urls[0] if urls else ""))
        if key not in self._backends:
            self._backends[key] = self._factory(*key)
        return self._backends[key]

    def load_backends(self) -> None:
        """Import the SDKs and build the clients of the chain's providers' endpoints, and
        only those.

        Done before announcing slots: an import takes ~1 s of CPU that would otherwise eat
        the first request's deadline."""
        for provider in providers_in_use(self.cfg):
            for url in endpoint_urls(self.cfg, provider) or [""]:
                self.backend(provider, url)

    async def run(self) -> None:
        self.load_backends()
        # One health round before announcing slots: it also warms the SDK's HTTP client
        # (pool, TLS context), which otherwise costs the first request up to a second.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._check_health(), WARMUP_TIMEOUT)
        ctx = zmq.asyncio.Context()
        self.sock = ipc.dealer_socket(ctx, ipc.endpoint(self.cfg.paths.run_dir, "work"),
                                      self.name)
        await self.sock.send(encode(Ready(caller=self.name, incarnation=self.incarnation,
                                              slots=self.slots)))
        log.info("%s up: incarnation %s, %d slots, chain %s", self.name, self.incarnation,
                 self.slots, " -> ".join(f"{t.provider}/{t.model}" for t in self.chain))
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
            # A drained caller's last results may still be queued: let them leave.
            self.sock.close(linger=RESULT_LINGER_MS if self.draining else 0)
            ctx.term()

    async def _recv_loop(self) -> None:
        while True:
            data = await self.sock.recv()
            msg = ipc.decode_or_count(data, "caller", log)
            if isinstance(msg, Request):
                await self.take(msg)

    async def take(self, request: Request) -> None:
        """Start a request, unless it is a re-dispatch of one we run or just answered."""
        if request.id in self._running:  # its Result goes out when the call ends
            return
        if request.id in self._answered:  # the Result may have died with a router
            await self.sock.send(self._answered[request.id])
            return
        task = asyncio.create_task(self.handle(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeat_loop(self) -> None:
        async def step() -> None:
            await asyncio.sleep(self.cfg.callers.heartbeat_interval)
            await self.sock.send(encode(Heartbeat(
                caller=self.name, incarnation=self.incarnation, slots=self.slots)))

        await survive("caller heartbeat", log, step)

    async def _check_health(self) -> bool:
        """Probe every chain entry once; True when all are up."""
        up: dict[str, bool] = {}
        for target in self.chain:
            health = await self.backend(target.provider).check(target.model)
            up[target.provider] = up.get(target.provider, True) and health.ok
            (log.info if health.ok else log.error)("%s health: %s", self.name, health.detail)
        for provider, ok in up.items():
            metrics.PROVIDER_UP.labels(provider).set(1 if ok else 0)
        self.providers_up = all(up.values())
        return self.providers_up

    async def _health_loop(self) -> None:
        """Probe periodically after the start-up round (more often while down)."""
        while True:
            await asyncio.sleep(HEALTH_RETRY * 10 if self.providers_up else HEALTH_RETRY)
            await self._check_health()

    async def handle(self, request: Request) -> None:
        self._running.add(request.id)
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
        provider, model = result.provider or request.provider, result.model or request.model
        metrics.LLM_REQUESTS.labels(provider, model, outcome).inc()
        metrics.LLM_LATENCY.labels(provider, model).observe(result.latency)
        log.info("request %s %s via %s/%s in %.3f s, %d calls (%d+%d tokens, $%.6f)",
                 request.id, outcome, provider, model, result.latency, result.attempts,
                 result.prompt_tokens, result.completion_tokens, result.cost_usd)
        data = encode(result)
        if not (request.hand_back and result.endpoint_failed):  # handed back: it runs again
            self._answered[request.id] = data
            while len(self._answered) > RESULTS_KEPT:
                self._answered.popitem(last=False)
        self._running.discard(request.id)
        await self.sock.send(data)

    async def call(self, request: Request,
                   send_partial: Callable[[Partial], Awaitable[None]] | None = None) -> Result:
        sink = PartialSink(request, self.name, send_partial or self._send_partial)
        return self.result_of(request, await self.providers.call(request, sink))

    async def _send_partial(self, partial: Partial) -> None:
        await self.sock.send(encode(partial))

    def result_of(self, request: Request, out: ChainOutcome) -> Result:
        """The wire Result of an outcome, with tokens and cost counted."""
        target, done = out.target, out.completion
        # Named only when the request's own endpoint answered (or failed), not a fallback.
        endpoint = request.endpoint if request.endpoint and \
            target.provider == request.provider and target.url == request.endpoint_url else ""
        if done is None:
            error = out.error
            kind = error.kind if error else "internal"
            return Result(id=request.id, caller=self.name, ok=False, error_kind=kind,
                          error=(error.message if error else "no outcome")[:300],
                          provider=target.provider, model=target.model, attempts=out.calls,
                          endpoint=endpoint, endpoint_failed=bool(endpoint) and
                          kind in ENDPOINT_KINDS and not out.streamed)
        cost = self.prices.cost(target.model, done.prompt_tokens, done.completion_tokens,
                                reported=done.model)
        self._warn_unpriced(target, done.model)
        labels = (target.provider, target.model)
        metrics.LLM_TOKENS.labels(*labels, "prompt").inc(done.prompt_tokens)
        metrics.LLM_TOKENS.labels(*labels, "completion").inc(done.completion_tokens)
        metrics.LLM_COST.labels(*labels).inc(cost)
        # Timed from the first token, the tokens after it are the ones generated meanwhile.
        tokens = done.completion_tokens - (1 if out.from_first_token else 0)
        if tokens > 0 and out.generation > 0:
            metrics.LLM_TOKEN_RATE.labels(*labels).observe(tokens / out.generation)
        # model stays the requested name (the router's budget and history key on it); the
        # provider's more specific name only picks the price.
        return Result(id=request.id, caller=self.name, ok=True, text=done.text,
                      provider=target.provider, model=target.model,
                      prompt_tokens=done.prompt_tokens,
                      completion_tokens=done.completion_tokens, cost_usd=cost,
                      attempts=out.calls, endpoint=endpoint)

    def _warn_unpriced(self, target: Target, reported: str) -> None:
        if target.provider == "ollama" or target.model in self._unpriced:
            return
        if not self.prices.is_priced(target.model, reported):
            self._unpriced.add(target.model)
            log.warning("%s: no price for %s/%s in budget.prices: its spend counts as $0",
                        self.name, target.provider, target.model)


def main_loop(cfg: Config, index: int) -> None:
    metrics.serve(f"caller-{index}", cfg.metrics.host, cfg.metrics.caller_base_port + index,
                  cfg.metrics.enabled)
    service = CallerService(cfg, index)
    run_until_signalled(service.run, service.drain)
