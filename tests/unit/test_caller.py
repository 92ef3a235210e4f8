"""Retries, failover and breakers of one request, on a virtual clock (no real sleeps).

A ``ScriptedBackend`` plays the provider: each call takes a scripted time on the virtual
clock and then answers or raises a classified ``LLMError`` (the classification itself is
tested against the fake HTTP servers in test_backends.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client.metrics import MetricWrapperBase

from rosey import metrics
from rosey.caller.base import Completion, Health, LLMError, OnText
from rosey.caller.breaker import Breaker, State
from rosey.caller.policy import Failure, RetryPolicy, attempt_timeout, backoff, decide
from rosey.caller.providers import Breakers, ProviderChain, Target, targets_for
from rosey.protocol import Request, Turn

T0 = 1_000_000.0
OLLAMA = Target("ollama", "llama3.2:3b")
OPENAI = Target("openai", "gpt-4o-mini")


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@dataclass
class Step:
    duration: float = 0.0
    error: LLMError | None = None
    hang: bool = False  # takes the whole timeout, then times out
    text: str = "hello"


@dataclass
class ScriptedBackend:
    name: str
    clock: Clock
    steps: list[Step] = field(default_factory=list)
    default: Step = field(default_factory=Step)
    calls: list[tuple[float, str, float]] = field(default_factory=list)  # (at, model, timeout)

    async def complete(self, turns: list[Turn], model: str, timeout: float) -> Completion:
        self.calls.append((round(self.clock.now - T0, 6), model, round(timeout, 6)))
        step = self.steps.pop(0) if self.steps else self.default
        if step.hang or step.duration >= timeout:
            self.clock.now += timeout
            raise LLMError("timeout", f"no answer within {timeout:g}s")
        self.clock.now += step.duration
        if step.error is not None:
            raise step.error
        return Completion(step.text, 100, 20, model)

    async def stream(self, turns: list[Turn], model: str, timeout: float,
                     on_text: OnText) -> Completion:
        done = await self.complete(turns, model, timeout)  # one piece: these tests do not stream
        await on_text(done.text)
        return done

    async def check(self, model: str, timeout: float = 5.0) -> Health:
        return Health(True, "ok")

    async def aclose(self) -> None:
        pass


def err(kind: str, status: int | None = None, retry_after: float | None = None) -> Step:
    return Step(error=LLMError(kind, f"fake {kind}", status=status,  # type: ignore[arg-type]
                               retry_after=retry_after))


def fixed(value: float) -> Iterator[float]:
    while True:
        yield value


class Rig:
    def __init__(self, chain: list[Target], *, rng: float = 0.5, failures: int = 5,
                 cooloff: float = 30.0, max_attempts: int = 3) -> None:
        self.clock = Clock()
        self.backends = {t.provider: ScriptedBackend(t.provider, self.clock) for t in chain}
        values = fixed(rng)
        self.chain = ProviderChain(
            chain, lambda p, url: self.backends[p], policy=RetryPolicy(max_attempts=max_attempts),
            breakers=Breakers(failures, cooloff), clock=self.clock, sleep=self.clock.sleep,
            rng=lambda: next(values))

    def request(self, target: Target = OLLAMA, timeout: float = 30.0) -> Request:
        return Request(id="r1", deadline=self.clock.now + timeout, provider=target.provider,
                       model=target.model, turns=[Turn("user", "alice: hi")])


def sample(metric: MetricWrapperBase, **labels: str) -> float:
    """A counter's or gauge's current value (read from the object: the registry may not
    hold it when another test narrowed it to one process role)."""
    for family in metric.collect():
        for s in family.samples:
            if s.name in (family.name, family.name + "_total") and s.labels == labels:
                return float(s.value)
    return 0.0


# ---- the pure policy --------------------------------------------------------------------


def test_backoff_doubles_is_capped_and_jittered_twenty_percent() -> None:
    policy = RetryPolicy()
    assert [backoff(policy, n, lambda: 0.5) for n in (1, 2, 3, 4, 5)] == [
        pytest.approx(v) for v in (0.2, 0.4, 0.8, 1.6, 2.0)]
    assert backoff(policy, 1, lambda: 0.0) == pytest.approx(0.16)
    assert backoff(policy, 1, lambda: 0.999999) == pytest.approx(0.24)


@pytest.mark.parametrize("kind", ["auth", "not_found", "empty", "internal"])
def test_never_retried_kinds_fail_over_or_give_up(kind: str) -> None:
    failure = Failure(kind, retryable=False)
    alone = decide(RetryPolicy(), failure, 1, T0, T0 + 30, has_next=False, rng=lambda: 0.5)
    chained = decide(RetryPolicy(), failure, 1, T0, T0 + 30, has_next=True, rng=lambda: 0.5)
    assert (alone.action, chained.action) == ("give_up", "failover")
    # the paired positive case: a retryable kind is retried in the same situation
    server = decide(RetryPolicy(), Failure("server", True), 1, T0, T0 + 30, has_next=True,
                    rng=lambda: 0.5)
    assert server.action == "retry" and server.delay == pytest.approx(0.2)


def test_retry_after_is_honoured_only_if_the_deadline_allows() -> None:
    policy = RetryPolicy()
    fits = decide(policy, Failure("rate_limited", True, 7.0), 1, T0, T0 + 30, has_next=False,
                  rng=lambda: 0.5)
    too_long = decide(policy, Failure("rate_limited", True, 29.7), 1, T0, T0 + 30,
                      has_next=True, rng=lambda: 0.5)
    assert (fits.action, fits.delay) == ("retry", 7.0)
    assert too_long.action == "failover"


def test_attempt_timeout_shares_the_deadline_with_a_fallback() -> None:
    policy = RetryPolicy()
    assert attempt_timeout(policy, T0, T0 + 30, has_next=False) == pytest.approx(29.95)
    assert attempt_timeout(policy, T0, T0 + 30, has_next=True) == pytest.approx(14.975)
    assert attempt_timeout(policy, T0, T0 + 30, has_next=True, cap=5) == 5
    # a retry with less than min_attempt left is not started; a first call is
    assert attempt_timeout(policy, T0, T0 + 0.3, has_next=False) == 0
    assert attempt_timeout(policy, T0, T0 + 0.3, has_next=False, first=True) == \
        pytest.approx(0.25)
    assert attempt_timeout(policy, T0, T0 - 1, has_next=False, first=True) == 0


# ---- the breaker ------------------------------------------------------------------------


def test_breaker_opens_half_opens_and_closes() -> None:
    seen: list[State] = []
    b = Breaker(failures=3, cooloff=10, on_change=seen.append)
    for t in range(2):
        assert b.allow(t)
        b.failure(t, "server")
    b.success(2)  # a success in between resets the count
    for t in (3, 4):
        b.failure(t, "server")
    assert (b.state, b.allow(4)) == (State.CLOSED, True)  # a tuple: mypy keeps no narrowing
    b.failure(5, "connection")
    assert b.state == State.OPEN and b.last_error == "connection"
    assert not b.allow(14.9) and b.retry_in(14.9) == pytest.approx(0.1)
    assert b.peek(15) == State.HALF_OPEN and b.would_allow(15)
    assert b.allow(15)  # the one probe
    assert not b.allow(15.1)  # a second concurrent call is refused
    b.failure(16, "connection")  # the probe failed: open again, cool-off restarts
    assert b.state == State.OPEN and not b.allow(25.9)
    assert b.allow(26)
    b.success(26.5)
    assert (b.state, b.allow(26.6), b.allow(26.7)) == (State.CLOSED, True, True)
    assert seen == [State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED]


def test_breaker_probe_that_never_reports_frees_after_a_cooloff() -> None:
    b = Breaker(failures=1, cooloff=10)
    b.failure(0)
    assert b.allow(10)  # probe claimed; its task is then cancelled and never reports
    assert not b.allow(19)
    assert b.allow(20)


def test_breaker_with_zero_failures_never_opens() -> None:
    b = Breaker(failures=0)
    for t in range(100):
        b.failure(t)
    assert b.state == State.CLOSED and b.allow(100)


# ---- one request through the chain -------------------------------------------------------


async def test_instant_500_is_retried_twice_then_fails_fast() -> None:
    rig = Rig([OLLAMA])
    rig.backends["ollama"].default = err("server", 500)
    before = sample(metrics.LLM_RETRIES, provider="ollama", kind="server")

    out = await rig.chain.call(rig.request())

    assert out.completion is None and out.error is not None and out.error.kind == "server"
    assert [c[0] for c in rig.backends["ollama"].calls] == [0.0, 0.2, pytest.approx(0.6)]
    assert rig.clock.sleeps == [0.2, 0.4]
    assert rig.clock.now - T0 == pytest.approx(0.6)  # not 30 s of silence
    assert out.calls == 3
    assert sample(metrics.LLM_RETRIES, provider="ollama", kind="server") - before == 2


async def test_a_500_then_success_answers() -> None:
    rig = Rig([OLLAMA])
    rig.backends["ollama"].steps = [err("server", 503), Step(duration=1.0, text="hi alice")]
    out = await rig.chain.call(rig.request())
    assert out.completion is not None and out.completion.text == "hi alice"
    assert out.error is None and out.calls == 2 and out.target == OLLAMA
    assert rig.clock.sleeps == [0.2]


@pytest.mark.parametrize(("kind", "status"), [("auth", 401), ("auth", 403),
                                              ("not_found", 404), ("internal", 400)])
async def test_client_errors_are_not_retried_but_fail_over(kind: str, status: int) -> None:
    rig = Rig([OLLAMA, OPENAI])
    rig.backends["ollama"].default = err(kind, status)
    out = await rig.chain.call(rig.request())
    assert len(rig.backends["ollama"].calls) == 1  # never retried
    assert rig.clock.sleeps == []
    assert out.completion is not None and out.target == OPENAI
    assert len(rig.backends["openai"].calls) == 1


async def test_empty_completion_is_not_retried_alone() -> None:
    rig = Rig([OLLAMA])
    rig.backends["ollama"].default = err("empty")
    out = await rig.chain.call(rig.request())
    assert out.error is not None and out.error.kind == "empty"
    assert len(rig.backends["ollama"].calls) == 1


async def test_429_waits_retry_after_when_the_deadline_allows() -> None:
    rig = Rig([OLLAMA])
    rig.backends["ollama"].steps = [err("rate_limited", 429, retry_after=3.0)]
    out = await rig.chain.call(rig.request())
    assert out.completion is not None
    assert rig.clock.sleeps == [3.0]
    assert [c[0] for c in rig.backends["ollama"].calls] == [0.0, 3.0]

    late = Rig([OLLAMA])
    late.backends["ollama"].steps = [err("rate_limited", 429, retry_after=40.0)]
    out = await late.chain.call(late.request())
    assert out.error is not None and out.error.kind == "rate_limited"
    assert late.clock.sleeps == [] and len(late.backends["ollama"].calls) == 1


async def test_retries_stop_when_they_no_longer_fit_the_deadline() -> None:
    rig = Rig([OLLAMA])
    rig.backends["ollama"].default = err("server", 500)
    out = await rig.chain.call(rig.request(timeout=1.0))
    # 0.0: fails; 0.2 + 0.5 fits in 0.95 → retry at 0.2; 0.2 + 0.4 + 0.5 > 0.95 → stop
    assert [c[0] for c in rig.backends["ollama"].calls] == [0.0, 0.2]
    assert out.error is not None and out.error.kind == "server"
    assert rig.clock.now - T0 < 1.0


async def test_a_hang_times_out_inside_the_deadline() -> None:
    rig = Rig([OLLAMA])
    rig.backends["ollama"].default = Step(hang=True)
    out = await rig.chain.call(rig.request())
    assert rig.backends["ollama"].calls == [(0.0, "llama3.2:3b", 29.95)]
    assert out.error is not None and out.error.kind == "timeout"
    assert rig.clock.now - T0 == pytest.approx(29.95)


async def test_hanging_primary_fails_over_with_half_the_deadline_left() -> None:
    rig = Rig([OLLAMA, OPENAI])
    rig.backends["ollama"].default = Step(hang=True)
    rig.backends["openai"].steps = [Step(duration=2.0, text="from openai")]
    before = sample(metrics.LLM_FAILOVERS, provider="ollama", model="llama3.2:3b")
    out = await rig.chain.call(rig.request())
    assert rig.backends["ollama"].calls == [(0.0, "llama3.2:3b", 14.975)]
    assert rig.backends["openai"].calls == [(14.975, "gpt-4o-mini", 14.975)]
    assert out.completion is not None and out.completion.text == "from openai"
    assert out.target == OPENAI
    assert [a.outcome for a in out.attempts] == ["timeout", "ok"]
    assert sample(metrics.LLM_FAILOVERS, provider="ollama",
                  model="llama3.2:3b") - before == 1


async def test_entry_timeout_caps_the_primary() -> None:
    capped = Target("ollama", "llama3.2:3b", timeout=5.0)
    rig = Rig([capped, OPENAI])
    rig.backends["ollama"].default = Step(hang=True)
    out = await rig.chain.call(rig.request(capped))
    assert rig.backends["ollama"].calls[0][2] == 5.0
    assert rig.backends["openai"].calls == [(5.0, "gpt-4o-mini", 24.95)]
    assert out.completion is not None


async def test_retries_on_the_primary_then_failover_order() -> None:
    rig = Rig([OLLAMA, OPENAI])
    rig.backends["ollama"].default = err("server", 500)
    out = await rig.chain.call(rig.request())
    order = [(a.provider, a.outcome) for a in out.attempts]
    assert order == [("ollama", "server")] * 3 + [("openai", "ok")]
    assert out.target == OPENAI


def test_targets_start_at_the_requested_entry_on_its_endpoint() -> None:
    chain = [OLLAMA, OPENAI]

    def ask(provider: str, model: str, url: str = "") -> Request:
        return Request(id="r", deadline=1.0, provider=provider, model=model, turns=[],
                       endpoint_url=url)

    assert targets_for(chain, ask("ollama", "llama3.2:3b")) == [OLLAMA, OPENAI]
    assert targets_for(chain, ask("openai", "gpt-4o-mini")) == [OPENAI]
    # a target the router chose outside the chain (budget switch) gets no failover
    assert targets_for(chain, ask("openai", "gpt-4.1-nano")) == [Target("openai", "gpt-4.1-nano")]
    # the router's endpoint applies to the request's provider; a fallback keeps its default
    on_gpu2 = targets_for(chain, ask("ollama", "llama3.2:3b", "http://gpu2:11434"))
    assert [t.url for t in on_gpu2] == ["http://gpu2:11434", ""]


class EndpointRig(Rig):
    """Two ollama hosts behind one chain entry, each with its own scripted backend."""

    def __init__(self, chain: list[Target]) -> None:
        super().__init__(chain)
        self.hosts = {url: ScriptedBackend(url, self.clock) for url in ("http://a", "http://b")}
        self.chain = ProviderChain(
            chain, lambda p, url: self.hosts[url] if url in self.hosts else self.backends[p],
            breakers=Breakers(5, 30), clock=self.clock, sleep=self.clock.sleep,
            rng=lambda: 0.5)

    def on(self, url: str, hand_back: bool) -> Request:
        return Request(id="r1", deadline=self.clock.now + 30, provider="ollama",
                       model=OLLAMA.model, turns=[Turn("user", "hi")], endpoint="x",
                       endpoint_url=url, hand_back=hand_back)


@pytest.mark.parametrize("failure", [err("connection"), err("server", 503), Step(hang=True)])
async def test_a_hand_back_stops_at_the_endpoints_first_failure(failure: Step) -> None:
    rig = EndpointRig([OLLAMA, OPENAI])
    rig.hosts["http://a"].default = failure
    out = await rig.chain.call(rig.on("http://a", hand_back=True))
    # One call on the dead host, no retry, no failover: the router moves the request.
    assert out.handed_back and out.completion is None and len(rig.hosts["http://a"].calls) == 1
    assert rig.clock.sleeps == [] and rig.backends["openai"].calls == []
    # The same host with nowhere else to go: the usual retries, then the fallback.
    rig.clock.now += 100
    out = await rig.chain.call(rig.on("http://a", hand_back=False))
    assert not out.handed_back and out.completion is not None and out.target == OPENAI
    assert len(rig.hosts["http://a"].calls) > 1 and len(rig.backends["openai"].calls) == 1


async def test_a_model_error_is_not_handed_back_and_a_dead_host_does_not_stop_another() -> None:
    rig = EndpointRig([OLLAMA, OPENAI])
    rig.hosts["http://a"].default = err("not_found", 404)
    out = await rig.chain.call(rig.on("http://a", hand_back=True))
    assert not out.handed_back and out.target == OPENAI  # failed over as before
    # host a's breaker is its own: host b still answers the same model.
    rig.hosts["http://a"].default = err("connection")
    for _ in range(6):
        await rig.chain.call(rig.on("http://a", hand_back=True))
    assert rig.chain.breakers.get(Target("ollama", OLLAMA.model, url="http://a")).state \
        == State.OPEN
    out = await rig.chain.call(rig.on("http://b", hand_back=True))
    assert out.completion is not None and out.target.url == "http://b"


async def test_breaker_skips_a_down_provider_then_probes_it() -> None:
    rig = Rig([OLLAMA, OPENAI], failures=2, cooloff=30)
    ollama, openai = rig.backends["ollama"], rig.backends["openai"]
    ollama.default = err("connection")
    first = await rig.chain.call(rig.request())
    # two failures open ollama's breaker: no third call, straight to openai
    assert [(a.provider, a.outcome) for a in first.attempts] == [
        ("ollama", "connection"), ("ollama", "connection"), ("openai", "ok")]
    assert sample(metrics.LLM_BREAKER_STATE, provider="ollama", model="llama3.2:3b") == 2
    second = await rig.chain.call(rig.request())
    assert [(a.provider, a.outcome) for a in second.attempts] == [
        ("ollama", "skipped"), ("openai", "ok")]
    assert len(ollama.calls) == 2
    # after the cool-off one probe goes through; it succeeds and closes the breaker
    rig.clock.now += 30
    ollama.default = Step(text="back")
    third = await rig.chain.call(rig.request())
    assert third.target == OLLAMA and third.completion is not None
    assert sample(metrics.LLM_BREAKER_STATE, provider="ollama", model="llama3.2:3b") == 0
    assert len(openai.calls) == 2


async def test_all_breakers_open_fails_fast_with_the_cause() -> None:
    rig = Rig([OLLAMA], failures=1, cooloff=60)
    rig.backends["ollama"].default = err("auth", 401)
    await rig.chain.call(rig.request())
    out = await rig.chain.call(rig.request())
    assert len(rig.backends["ollama"].calls) == 1  # the second request made no call
    assert out.error is not None and out.error.kind == "auth"
    assert "circuit open" in out.error.message
    assert rig.clock.now - T0 == 0


async def test_deadline_already_passed_makes_no_call() -> None:
    rig = Rig([OLLAMA])
    out = await rig.chain.call(rig.request(timeout=-1))
    assert rig.backends["ollama"].calls == []
    assert out.error is not None and out.error.kind == "timeout"


async def test_a_backend_bug_becomes_internal() -> None:
    rig = Rig([OLLAMA])

    async def broken(turns: list[Turn], model: str, timeout: float) -> Completion:
        raise RuntimeError("oops")

    rig.backends["ollama"].complete = broken  # type: ignore[method-assign]
    out = await rig.chain.call(rig.request())
    assert out.error is not None and out.error.kind == "internal" and "oops" in out.error.message
    assert out.calls == 1
