"""The dispatch queue is fair across channels: per-channel FIFOs served round-robin,
bounded per channel and in total (rosey/router/fairqueue.py, via the router's Pool)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from rosey.protocol import Request, Turn
from rosey.router.dispatch import Job, Pool


def job(n: int, channel: str, deadline: float = 100.0) -> Job:
    return Job(Request(id=f"{channel}{n}", deadline=deadline, provider="ollama", model="m",
                       turns=[Turn("user", "hi")]), enqueued_at=0.0, channel=channel)


def one_slot_pool(queue_max: int = 64, channel_max: int | None = None) -> Pool:
    pool = Pool(liveness=1e9, queue_max=queue_max, channel_max=channel_max)
    pool.seen(b"c0", "a", slots=1, now=0)
    return pool


def serve_one(pool: Pool) -> str:
    """Dispatch the next job to the one slot, finish it, and name it."""
    [(_, sent)] = pool.assign(now=0)
    assert pool.complete(sent.request.id) is sent
    return sent.request.id


def test_a_burst_in_one_channel_does_not_starve_the_quiet_ones() -> None:
    pool = one_slot_pool()
    for n in range(50):
        assert pool.submit(job(n, "flood"))
    for channel in ("a", "b", "c", "d", "e"):
        assert pool.submit(job(0, channel))
    served = [serve_one(pool) for _ in range(12)]
    # Each quiet channel waited behind one flood job at most, then the flood goes on.
    assert served[:6] == ["flood0", "a0", "b0", "c0", "d0", "e0"]
    assert served[6:] == [f"flood{n}" for n in range(1, 7)]


def test_a_quiet_channel_arriving_mid_burst_goes_after_one_more_flood_job() -> None:
    pool = one_slot_pool()
    for n in range(10):
        pool.submit(job(n, "flood"))
    assert [serve_one(pool) for _ in range(3)] == ["flood0", "flood1", "flood2"]
    pool.submit(job(0, "quiet"))
    assert [serve_one(pool) for _ in range(3)] == ["flood3", "quiet0", "flood4"]


def test_bounded_per_channel_and_in_total_with_room_made_for_a_shorter_channel() -> None:
    pool = one_slot_pool(queue_max=6, channel_max=4)
    assert all(pool.submit(job(n, "flood")) for n in range(4))
    assert pool.full("flood") and not pool.submit(job(4, "flood"))  # its own bound
    assert pool.submit(job(0, "a")) and pool.submit(job(0, "b"))  # total now 6
    assert len(pool.queue) == 6 and not pool.full("c")
    # The queue is full: a channel with nothing queued still gets in, in place of the
    # longest channel's newest job, which the next expire sheds (the flow answers it).
    assert pool.submit(job(0, "c"))
    assert pool.queue.depth("flood") == 3 and len(pool.queue) == 6
    assert [j.request.id for j in pool.expire(now=1).shed] == ["flood3"]
    assert pool.expire(now=1).shed == []  # shed once
    # Room is made only while the newcomer's channel stays shorter than the longest.
    assert pool.submit(job(1, "a"))  # evicts flood2
    assert (pool.queue.depth("flood"), pool.queue.depth("a")) == (2, 2)
    assert pool.full("a") and not pool.submit(job(2, "a"))
    assert [j.request.id for j in pool.expire(now=1).shed] == ["flood2"]


def test_requeued_job_goes_first_in_its_channel_and_its_channel_next() -> None:
    pool = Pool(liveness=3, queue_max=64)
    pool.seen(b"c0", "a", slots=1, now=0)
    pool.submit(job(0, "x"))
    pool.assign(now=0)
    pool.submit(job(1, "x"))
    pool.submit(job(0, "y"))
    requeued = pool.seen(b"c0", "b", slots=1, now=1)  # a new incarnation
    assert [j.request.id for j in requeued] == ["x0"]
    assert [j.request.id for j in pool.queue.peek_heads()] == ["x0", "y0"]
    assert pool.oldest_age(now=5) == 5


OPS = st.lists(st.one_of(st.sampled_from("abcde").map(lambda c: ("submit", c)),
                         st.just(("serve", ""))), max_size=120)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_no_channel_waits_behind_more_than_its_own_queue_plus_one_of_each_other(
        ops: list[tuple[str, str]]) -> None:
    pool = one_slot_pool(queue_max=1000)
    counts: Counter[str] = Counter()
    ahead: dict[str, tuple[int, Counter[str]]] = {}  # id -> (own ahead, others served since)
    for op, channel in ops:
        if op == "submit":
            counts[channel] += 1
            new = job(counts[channel], channel)
            ahead[new.request.id] = (pool.queue.depth(channel), Counter())
            assert pool.submit(new)
        elif pool.queue:
            served = serve_one(pool)
            ahead.pop(served)
            for _, others in ahead.values():
                others[served.rstrip("0123456789")] += 1
            for queued in pool.queue:
                mine, others = ahead[queued.request.id]
                for other, n in others.items():
                    if other != queued.channel:
                        assert n <= mine + 1, (queued.request.id, other, n, mine)
    assert len(pool.queue) == len(ahead)  # everything submitted is queued or was served


def test_a_freed_slot_goes_to_the_channel_with_fewer_calls_running() -> None:
    pool = Pool(liveness=1e9, queue_max=64)
    pool.seen(b"c0", "a", slots=4, now=0)
    for n in range(10):
        pool.submit(job(n, "flood"))
    assert len(pool.assign(now=0)) == 4  # the flood holds every slot
    pool.submit(job(0, "quiet"))
    pool.submit(job(10, "flood"))
    assert [j.channel for j in pool.queue.peek_heads()] == ["flood", "quiet"]  # flood's turn
    pool.complete("flood0")
    # ...but flood runs 3 calls and quiet none: the slot goes to quiet.
    assert [j.request.id for _, j in pool.assign(now=1)] == ["quiet0"]
    pool.complete("flood1")
    assert [j.request.id for _, j in pool.assign(now=1)] == ["flood4"]
