"""One request through the provider chain: attempts, retries, failover, breakers.

``ProviderChain.call`` is the caller process's whole decision loop for one request.  It
does no I/O of its own: backends come from a factory and time from an injected
``clock``/``sleep``/``rng``, so the unit tests run it on a virtual clock
(tests/unit/test_caller.py) and the decisions themselves live in the pure
``rosey.caller.policy`` and ``rosey.caller.breaker``.

Streaming (``llm.stream``, ``providers.<name>.stream``): the backend's ``stream`` hands each
piece of text to a ``Sink`` as it arrives, and the sink sends ``Partial`` pieces on.  A
failure may be retried or failed over only while the sink has sent nothing
(``committed``): once a piece is out, the channel may be reading it, and another attempt
would start a different answer.  A separate first-token deadline (``first_token``) lets a
provider that has not started answering be left for the fallback early.

The chain: ``llm.provider``/``llm.model`` then ``providers.fallbacks`` in order.  A request
names the entry to start from (the router may switch the model, e.g. for the budget); the
entries after it are the fallbacks.  A request for a target outside the chain gets no
failover: the router chose it on purpose.

Endpoints: the router picks the model host (``Request.endpoint_url``) for the request's
provider; every entry of that provider runs there, other providers at their default.  With
``Request.hand_back`` (the router has another host for it) an endpoint failure — refused
connection, HTTP 5xx, timeout — ends the call at once, before any retry or failover: the
router runs the request on another host, and this one is not hammered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from rosey import metrics
from rosey.caller.base import Backend, Completion, LLMError
from rosey.caller.breaker import Breaker, State
from rosey.caller.policy import Decision, Failure, RetryPolicy, attempt_timeout, decide
from rosey.protocol import Request

log = logging.getLogger("rosey.caller")

# Failures that say the provider (or this model on it) is unwell; they count towards its
# breaker.  empty / internal are answers about this request, not the provider's health.
BREAKER_KINDS = frozenset(
    {"timeout", "connection", "server", "bad_response", "rate_limited", "auth", "not_found"})
# Failures of the host itself, not of the model or the request: with a hand-back, the
# router moves the request to another host.
ENDPOINT_KINDS = frozenset({"connection", "server", "timeout"})
# A backend that ignores its timeout is cut off this long after it.
SAFETY = 1.0


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str
    timeout: float = 0.0  # cap per call; 0: the policy's share of the deadline
    url: str = ""  # the endpoint; "" : the provider's configured default

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.model)


@dataclass(slots=True)
class Attempt:
    provider: str
    model: str
    outcome: str  # "ok", an error kind, or "skipped" (breaker open)
    started: float
    duration: float
    timeout: float


@dataclass(slots=True)
class ChainOutcome:
    target: Target  # the entry that answered, or the last one tried
    completion: Completion | None = None
    error: LLMError | None = None
    attempts: list[Attempt] = field(default_factory=list)
    streamed: bool = False  # pieces of the answer were sent before the outcome
    generation: float = 0.0  # seconds from the first token (or the call) to the answer
    from_first_token: bool = False  # generation is timed from the first token
    # The request's own endpoint failed and the call stopped there for the router to move
    # it (``Request.hand_back``).
    handed_back: bool = False

    @property
    def calls(self) -> int:
        return sum(1 for a in self.attempts if a.outcome != "skipped")


class Sink(Protocol):
    """Where a streamed answer's text goes (the caller process's Partial sender)."""

    committed: bool  # something was sent on: no more retries or failover

    def reset(self) -> None:
        """A new attempt starts: forget the text of the failed one (none of it was sent)."""

    async def text(self, delta: str) -> None: ...


def targets_for(chain: Sequence[Target], request: Request) -> list[Target]:
    """The entries to try for ``request``, those of its provider on its endpoint."""
    provider, model = request.provider, request.model
    targets = next((list(chain[i:]) for i, t in enumerate(chain) if t.key == (provider, model)),
                   [Target(provider, model)])
    return [replace(t, url=request.endpoint_url) if t.provider == provider else t
            for t in targets]


class Breakers:
    """The breakers of one caller process, created on first use, exported as a gauge."""

    def __init__(self, failures: int = 5, cooloff: float = 30.0) -> None:
        self.failures = failures
        self.cooloff = cooloff
        self._by_key: dict[tuple[str, str, str], Breaker] = {}

    def get(self, target: Target) -> Breaker:
        """The breaker of the target's model on the target's endpoint (one dead host must
        not stop calls to the same model on another)."""
        breaker = self._by_key.get((*target.key, target.url))
        if breaker is None:
            gauge = metrics.LLM_BREAKER_STATE.labels(*target.key)
            gauge.set(State.CLOSED)

            def changed(state: State, target: Target = target) -> None:
                gauge.set(state)
                log.warning("breaker %s/%s %s", target.provider, target.model, state.name)

            breaker = Breaker(self.failures, self.cooloff, on_change=changed)
            self._by_key[(*target.key, target.url)] = breaker
        return breaker


class ProviderChain:
    def __init__(
        self,
        chain: Sequence[Target],
        backend: Callable[[str, str], Backend],
        *,
        policy: RetryPolicy | None = None,
        breakers: Breakers | None = None,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float],
        streams: Callable[[str], bool] = lambda provider: False,
        first_token: float = 0.0,
    ) -> None:
        self.chain = list(chain)
        self.streams = streams
        self.first_token = first_token
        self.backend = backend
        self.policy = policy or RetryPolicy()
        self.breakers = breakers or Breakers()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng

    async def call(self, request: Request, sink: Sink | None = None) -> ChainOutcome:
        targets = targets_for(self.chain, request)
        out = ChainOutcome(targets[0])
        first = True
        for index, target in enumerate(targets):
            out.target = target
            later = targets[index + 1:]
            tries = 0
            while True:
                now = self.clock()
                breaker = self.breakers.get(target)
                # The router's other endpoint counts as a next target: a host that hangs
                # (rather than refusing) must leave time for the hand-back to be answered.
                has_next = self._can_hand_back(request, target) or any(
                    self.breakers.get(t).would_allow(now) for t in later)
                timeout = attempt_timeout(self.policy, now, request.deadline,
                                          has_next=has_next, cap=target.timeout, first=first)
                if timeout <= 0:
                    if out.error is None:
                        out.error = LLMError("timeout", "the deadline passed before a call")
                    return out
                if not breaker.allow(now):
                    out.attempts.append(Attempt(*target.key, "skipped", now, 0.0, 0.0))
                    metrics.LLM_ATTEMPTS.labels(*target.key, "skipped").inc()
                    out.error = LLMError(
                        breaker.last_error or "connection",  # type: ignore[arg-type]
                        f"{target.provider}/{target.model} circuit open after "
                        f"{breaker.consecutive} failures; next probe in "
                        f"{breaker.retry_in(now):.0f} s")
                    if self._hand_back(request, target, out.error):
                        out.handed_back = True
                        return out
                    break  # to the next entry
                first = False
                tries += 1
                if sink is not None and not sink.committed:
                    sink.reset()
                try:
                    done = await self._attempt(request, target, timeout, out, sink)
                except LLMError as exc:
                    out.error = exc
                    now = self.clock()
                    if exc.kind in BREAKER_KINDS:
                        breaker.failure(now, exc.kind)
                    else:
                        breaker.success(now)
                    if sink is not None and sink.committed:
                        out.streamed = True
                        log.info("request %s: %s/%s %s after part of the answer was sent; "
                                 "no retry", request.id, *target.key, exc.kind)
                        return out
                    if self._hand_back(request, target, exc):
                        out.handed_back = True
                        log.info("request %s: endpoint %s %s; handed back to the router",
                                 request.id, request.endpoint, exc.kind)
                        return out
                    has_next = any(self.breakers.get(t).would_allow(now) for t in later)
                    if breaker.state == State.OPEN:  # this failure opened it: move on now
                        decision = Decision("failover" if has_next else "give_up", 0.0,
                                            "breaker opened")
                    else:
                        decision = decide(self.policy, Failure(exc.kind, exc.retryable,
                                                               exc.retry_after),
                                          tries, now, request.deadline, has_next=has_next,
                                          rng=self.rng)
                    log.info("request %s: %s/%s %s; %s (%s)", request.id, *target.key,
                             exc.kind, decision.action, decision.reason)
                    if decision.action == "retry":
                        metrics.LLM_RETRIES.labels(target.provider, exc.kind).inc()
                        await self.sleep(decision.delay)
                        continue
                    if decision.action == "failover":
                        metrics.LLM_FAILOVERS.labels(*target.key).inc()
                        break
                    return out
                self.breakers.get(target).success(self.clock())
                out.completion = done
                out.error = None
                out.streamed = sink is not None and sink.committed
                return out
        return out

    @staticmethod
    def _hand_back(request: Request, target: Target, error: LLMError) -> bool:
        """Whether to stop at this failure and let the router run the request on another
        endpoint: it asked so, and the request's own endpoint failed as a host."""
        return error.kind in ENDPOINT_KINDS and ProviderChain._can_hand_back(request, target)

    @staticmethod
    def _can_hand_back(request: Request, target: Target) -> bool:
        """The router has another endpoint for this request's own target."""
        return request.hand_back and target.provider == request.provider \
            and target.url == request.endpoint_url

    async def _attempt(self, request: Request, target: Target, timeout: float,
                       out: ChainOutcome, sink: Sink | None) -> Completion:
        started = self.clock()
        outcome = "cancelled"  # stays so only if the task is cancelled (shutdown)
        backend = self.backend(target.provider, target.url)
        streaming = sink is not None and self.streams(target.provider) and \
            callable(getattr(backend, "stream", None))
        first_token = self.first_token if streaming and 0 < self.first_token < timeout else 0.0
        first_at: float | None = None
        try:
            async with asyncio.timeout(timeout + SAFETY) as whole:
                if streaming:
                    assert sink is not None
                    loop = asyncio.get_running_loop()
                    end = loop.time() + timeout + SAFETY
                    if first_token:
                        whole.reschedule(loop.time() + first_token)

                    async def on_text(delta: str) -> None:
                        nonlocal first_at
                        if first_at is None:
                            first_at = self.clock()
                            whole.reschedule(end)
                        await sink.text(delta)

                    done = await backend.stream(request.turns, target.model, timeout, on_text)
                else:
                    done = await backend.complete(request.turns, target.model, timeout)
            outcome = "ok"
            out.generation = self.clock() - (first_at if first_at is not None else started)
            out.from_first_token = first_at is not None
            return done
        except LLMError as exc:
            outcome = exc.kind
            raise
        except TimeoutError:
            outcome = "timeout"
            if first_token and first_at is None:
                raise LLMError("timeout", f"no first token from {target.provider} within "
                                          f"{first_token:g} s") from None
            raise LLMError("timeout", f"{target.provider} ignored its {timeout:.1f} s "
                                      "timeout") from None
        except Exception as exc:  # a backend bug must not lose the request
            outcome = "internal"
            raise LLMError("internal", f"{type(exc).__name__}: {exc}") from exc
        finally:
            duration = self.clock() - started
            out.attempts.append(Attempt(*target.key, outcome, started, duration, timeout))
            metrics.LLM_ATTEMPTS.labels(*target.key, outcome).inc()
