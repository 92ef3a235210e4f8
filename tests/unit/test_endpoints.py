"""The router's endpoint scheduler (rosey/router/endpoints.py) and its use by the Pool:
capacity shared by the whole caller pool, least outstanding work, breaker and probe,
and the hand-back of a request whose endpoint failed."""

from __future__ import annotations

from dataclasses import dataclass

from rosey.protocol import Request, Result, Turn
from rosey.router.dispatch import Job, Pool
from rosey.router.endpoints import UNSCHEDULED, Endpoints


@dataclass(frozen=True)
class Spec:
    name: str
    url: str
    capacity: int


def two(fast_cap: int = 4, slow_cap: int = 2, **kw: float) -> Endpoints:
    return Endpoints({"ollama": [Spec("gpu1", "http://gpu1:11434", fast_cap),
                                 Spec("gpu2", "http://gpu2:11434", slow_cap)]}, **kw)  # type: ignore[arg-type]


def test_least_outstanding_work_then_latency_and_capacity_is_a_hard_bound() -> None:
    eps = two(fast_cap=4, slow_cap=2)
    picks = []
    for _ in range(6):
        choice = eps.pick("ollama", now=0)
        assert choice is not None and choice.hand_back
        eps.started(choice.name)
        picks.append(choice.name)
    assert sorted(picks) == ["gpu1"] * 4 + ["gpu2"] * 2  # filled in proportion
    assert eps.pick("ollama", now=0) is None  # both full: the request waits
    eps.succeeded("gpu2", 2.0, now=1)
    eps.succeeded("gpu1", 1.0, now=1)
    # Equal load (3/4 vs 1/2 is not equal; free one more on gpu1 to tie at 1/2)...
    eps.succeeded("gpu1", 1.0, now=1)
    assert (eps.by_name["gpu1"].load, eps.by_name["gpu2"].load) == (0.5, 0.5)
    choice = eps.pick("ollama", now=1)
    assert choice is not None and choice.name == "gpu1"  # ...the faster one wins the tie
    assert eps.pick("openai", now=1) is UNSCHEDULED  # a provider without endpoints


def test_breaker_takes_a_failing_endpoint_out_and_one_probe_brings_it_back() -> None:
    eps = two(failures=3, cooloff=10)
    for n in range(3):
        eps.started("gpu1")
        eps.failed("gpu1", now=n)
    assert not eps.up("gpu1") and eps.up("gpu2")
    choice = eps.pick("ollama", now=5)
    assert choice is not None and choice.name == "gpu2" and not choice.hand_back
    assert eps.pick("ollama", now=12.5) is not None
    probe = eps.pick("ollama", now=12.5, tried=frozenset({"gpu2"}))
    assert probe is not None and probe.name == "gpu1"
    eps.started("gpu1")  # the one probe is out: no second one
    assert eps.pick("ollama", now=13, tried=frozenset({"gpu2"})).name == "gpu1"  # type: ignore[union-attr]
    assert not eps.by_name["gpu1"].due(13, 10)
    eps.failed("gpu1", now=14)  # the probe failed: out for another cool-off
    assert not eps.by_name["gpu1"].due(23, 10) and eps.by_name["gpu1"].due(24, 10)
    eps.started("gpu1")
    eps.succeeded("gpu1", 0.5, now=24)  # the next probe answered: back in
    assert eps.up("gpu1") and eps.by_name["gpu1"].failures == 0


def test_a_slow_streak_takes_an_endpoint_out() -> None:
    eps = two(slow_streak=3, slow_factor=4)
    eps.started("gpu1")
    eps.succeeded("gpu1", 1.0, now=0)
    for n in range(2):
        eps.started("gpu2")
        eps.succeeded("gpu2", 3.9, now=n)  # slower, not 4x: fine
    assert eps.up("gpu2")
    for n in range(3):
        eps.started("gpu2")
        eps.succeeded("gpu2", 6.0, now=n)
        assert eps.up("gpu2") == (n < 2)


def test_when_every_endpoint_is_down_the_request_still_goes_without_a_hand_back() -> None:
    eps = two(failures=1, cooloff=60)
    eps.failed("gpu1", now=0)
    eps.failed("gpu2", now=0)
    choice = eps.pick("ollama", now=1)
    assert choice is not None and not choice.hand_back  # the caller's own chain decides


def job(n: int, channel: str = "c") -> Job:
    return Job(Request(id=f"r{n}", deadline=100.0, provider="ollama", model="m",
                       turns=[Turn("user", "hi")]), enqueued_at=0.0, channel=channel)


def test_pool_hands_a_failed_endpoints_request_to_the_other_and_only_that_one() -> None:
    pool = Pool(liveness=1e9, queue_max=64, endpoints=two(fast_cap=2, slow_cap=2, failures=1))
    pool.seen(b"c0", "a", slots=8, now=0)
    for n in range(3):
        pool.submit(job(n))
    sent = {j.request.id: j.request for _, j in pool.assign(now=0)}
    assert {r.endpoint for r in sent.values()} == {"gpu1", "gpu2"}
    assert all(r.hand_back and r.endpoint_url.endswith(":11434") for r in sent.values())
    dead = next(r for r in sent.values() if r.endpoint == "gpu1")
    ok = next(r for r in sent.values() if r.endpoint == "gpu2")
    assert not pool.report(Result(id=ok.id, caller="c0", ok=True, latency=0.5, endpoint="gpu2"),
                           now=1)
    assert pool.complete(ok.id) is not None
    failed = Result(id=dead.id, caller="c0", ok=False, error_kind="connection",
                    endpoint="gpu1", endpoint_failed=True)
    assert pool.report(failed, now=1)  # back in the queue, first in its channel
    assert dead.id not in pool.in_flight and not pool.endpoints.up("gpu1")
    again = {j.request.id: j.request for _, j in pool.assign(now=1)}
    assert again[dead.id].endpoint == "gpu2"
    assert not again[dead.id].hand_back  # nowhere else left: the caller's chain decides
    # The other request that ran on gpu1 is untouched (no retry for it).
    others = [j for j in pool.in_flight.values() if j.endpoint == "gpu1"]
    assert [j.request.id for j in others] == [r.id for r in sent.values()
                                            if r.endpoint == "gpu1" and r.id != dead.id]
    # A model error says nothing against its endpoint and is concluded as usual.
    model_error = Result(id=dead.id, caller="c0", ok=False, error_kind="not_found",
                         endpoint="gpu2")
    assert not pool.report(model_error, now=2) and pool.endpoints.up("gpu2")
    assert pool.complete(dead.id) is not None
    # Only the other request is still counted, on gpu1.
    assert [(e.name, e.in_flight) for e in pool.endpoints.all()] == [("gpu1", 1), ("gpu2", 0)]


def test_a_host_that_just_failed_comes_last_and_gets_one_request_at_a_time() -> None:
    eps = two(fast_cap=4, slow_cap=1, failures=3)
    eps.started("gpu1")
    eps.failed("gpu1", now=0)  # one failure: still up, but suspect
    assert eps.up("gpu1")
    first = eps.pick("ollama", now=0)
    assert first is not None and first.name == "gpu2"  # the healthy one first
    eps.started("gpu2")
    second = eps.pick("ollama", now=0)
    assert second is not None and second.name == "gpu1"  # one at a time on the suspect
    eps.started("gpu1")
    assert eps.pick("ollama", now=0) is None
    eps.succeeded("gpu1", 0.5, now=1)  # it answered: full capacity again
    assert eps.by_name["gpu1"].free and eps.by_name["gpu1"].failures == 0


def test_a_whole_capacity_of_failures_takes_a_small_host_out_below_the_threshold() -> None:
    eps = two(fast_cap=4, slow_cap=2, failures=5)
    for n in range(2):
        eps.started("gpu2")
        eps.failed("gpu2", now=n)
    assert not eps.up("gpu2")  # both of its slots failed
    for n in range(4):
        eps.started("gpu1")
        eps.failed("gpu1", now=n)
        assert eps.up("gpu1") == (n < 3)


def test_an_answer_from_a_fallback_elsewhere_is_no_verdict_on_the_endpoint() -> None:
    pool = Pool(liveness=1e9, queue_max=8, endpoints=two(failures=1))
    pool.seen(b"c0", "a", slots=8, now=0)
    pool.submit(job(0))
    [(_, sent)] = pool.assign(now=0)
    state = pool.endpoints.by_name[sent.endpoint]
    assert state.in_flight == 1
    assert not pool.report(Result(id="r0", caller="c0", ok=True, latency=9.0, endpoint=""),
                           now=9)
    assert (state.in_flight, state.completed, state.latency) == (0, 0, 0.0)
    pool.complete("r0")
    assert state.in_flight == 0  # released once, not twice


def test_a_host_due_for_its_probe_is_probed_even_while_a_peer_has_room() -> None:
    # Light load: gpu2 always has room.  Were the probe ranked behind it, gpu1 would stay
    # out for good after a restart (half the capacity lost until the router restarts).
    eps = Endpoints({"ollama": [Spec("gpu1", "http://gpu1", 4), Spec("gpu2", "http://gpu2", 4)]},
                    failures=3, cooloff=10.0)
    for _ in range(3):
        eps.started("gpu1")
        eps.failed("gpu1", 0.0)
    assert not eps.up("gpu1")
    early = eps.pick("ollama", 5.0)
    assert early is not None and early.name == "gpu2"  # cooling off: not yet
    picked = []
    for i in range(4):
        now = 100.0 + i
        choice = eps.pick("ollama", now)
        assert choice is not None
        picked.append(choice.name)
        eps.started(choice.name)
        eps.succeeded(choice.name, 0.5, now)
    assert picked[0] == "gpu1" and eps.up("gpu1")  # the probe answered: back in
    assert "gpu1" in picked[1:]  # and it takes its share again


def test_breaker_failures_zero_never_takes_a_host_out() -> None:
    eps = two(failures=0)  # providers.breaker_failures 0: "never", as for the caller's breakers
    for _ in range(10):
        eps.started("gpu1")
        eps.failed("gpu1", 0.0)
    assert eps.up("gpu1")
