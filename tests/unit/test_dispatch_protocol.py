"""The caller-pool broker's bookkeeping and the wire schema (golden round trips)."""

from __future__ import annotations

import msgspec
import pytest

from rosey import protocol
from rosey.protocol import DecodeError, Request, Result, Turn, decode, encode
from rosey.router.dispatch import Job, Pool


def job(n: int, deadline: float = 100.0) -> Job:
    return Job(Request(id=f"r{n}", deadline=deadline, provider="ollama", model="m",
                       turns=[Turn("user", "hi")]), enqueued_at=0.0)


def test_assigns_to_free_slots_and_queues_the_rest() -> None:
    pool = Pool(liveness=3, queue_max=10)
    pool.seen(b"c0", "inc-a", slots=2, now=0)
    pool.seen(b"c1", "inc-b", slots=1, now=0)
    for n in range(4):
        assert pool.submit(job(n))
    assigned = pool.assign(now=0)
    assert [j.request.id for _, j in assigned] == ["r0", "r1", "r2"]
    assert {c for c, _ in assigned} == {b"c0", b"c1"}
    assert len(pool.queue) == 1
    assert pool.complete("r0") is not None
    assert pool.complete("r0") is None  # a duplicate result is ignored
    assert [j.request.id for _, j in pool.assign(now=1)] == ["r3"]


def test_queue_is_bounded() -> None:
    pool = Pool(queue_max=2)
    assert pool.submit(job(0)) and pool.submit(job(1))
    assert not pool.submit(job(2))


def test_silent_caller_is_dropped_and_its_requests_requeued_first() -> None:
    pool = Pool(liveness=3)
    pool.seen(b"c0", "a", slots=2, now=0)
    pool.submit(job(0))
    pool.submit(job(1))
    pool.assign(now=0)
    pool.submit(job(2))
    expired = pool.expire(now=2.9)
    assert expired.dead_callers == [] and pool.alive() == 1
    expired = pool.expire(now=3.5)
    assert expired.dead_callers == [b"c0"]
    assert [j.request.id for j in pool.queue] == ["r0", "r1", "r2"]
    pool.seen(b"c1", "b", slots=4, now=4)
    assert [j.request.id for _, j in pool.assign(now=4)] == ["r0", "r1", "r2"]


def test_new_incarnation_requeues_at_once() -> None:
    pool = Pool()
    pool.seen(b"c0", "old", slots=1, now=0)
    pool.submit(job(0))
    pool.assign(now=0)
    assert pool.seen(b"c0", "old", slots=1, now=1) == []
    requeued = pool.seen(b"c0", "new", slots=1, now=1)
    assert [j.request.id for j in requeued] == ["r0"]
    assert [j.request.id for _, j in pool.assign(now=1)] == ["r0"]


def test_deadlines_shed_queued_at_deadline_and_in_flight_after_grace() -> None:
    pool = Pool()
    pool.seen(b"c0", "a", slots=1, now=0)
    pool.submit(job(0, deadline=10))
    pool.submit(job(1, deadline=10))
    pool.assign(now=0)
    pool.seen(b"c0", "a", slots=1, now=9.9)  # alive
    expired = pool.expire(now=10.0, grace=0.5)
    assert [j.request.id for j in expired.shed] == ["r1"]
    expired = pool.expire(now=10.5, grace=0.5)
    assert [j.request.id for j in expired.shed] == ["r0"]
    assert not pool.in_flight and not pool.queue


GOLDEN: list[tuple[protocol.Message, bytes]] = [
    (protocol.Chat(channel="c", username="alice", text="hi rosey", time=1795572605965),
     b"\x85\xa1k\xa4chat\xa7channel\xa1c\xa8username\xa5alice\xa4text\xa8hi rosey"
     b"\xa4time\xcf\x00\x00\x01\xa2\x10w\xa4\r"),
    (protocol.Say(id="x", channel="c", text="alice: hello"),
     b"\x84\xa1k\xa3say\xa2id\xa1x\xa7channel\xa1c\xa4text\xacalice: hello"),
]


@pytest.mark.parametrize(("msg", "golden"), GOLDEN)
def test_golden_encoding(msg: protocol.Message, golden: bytes) -> None:
    assert encode(msg) == golden
    assert decode(golden) == msg


@pytest.mark.parametrize("msg", [
    protocol.Pm(channel="c", username="bob", text="?", time=1, received_at=2.5),
    protocol.UserList(channel="c", users=[protocol.User(name="a", rank=1.5, aliases=["b"])]),
    protocol.UserJoined(channel="c", user=protocol.User(name="a")),
    protocol.UserLeft(channel="c", name="a"),
    protocol.RankChanged(channel="c", name="a", rank=2),
    protocol.ConnState(channel="c", state="joined", bot_name="rosey", bot_rank=2),
    protocol.Delivered(channel="c", say_id="x", ok=False, parts=2, reason="no echo"),
    protocol.Ready(caller="caller-0", incarnation="i", slots=4),
    protocol.Heartbeat(caller="caller-0", incarnation="i", slots=4),
    Request(id="r", deadline=1.5, provider="openai", model="m",
            turns=[Turn("system", "s"), Turn("user", "u")]),
    Request(id="r", deadline=1.5, provider="ollama", model="m", turns=[],
            endpoint="gpu1", endpoint_url="http://gpu1:11434", hand_back=True),
    Result(id="r", caller="caller-0", ok=False, error_kind="timeout", error="slow"),
    Result(id="r", caller="caller-0", ok=False, error_kind="connection", endpoint="gpu1",
           endpoint_failed=True),
    protocol.CtlRequest(command="llm", args=["off"]),
    protocol.CtlReply(ok=True, text="done"),
])
def test_round_trip(msg: protocol.Message) -> None:
    assert decode(encode(msg)) == msg


@pytest.mark.parametrize("data", [
    b"", b"\xc1", b"not msgpack at all", msgspec.msgpack.encode({"k": "nope"}),
    msgspec.msgpack.encode({"k": "chat"}), msgspec.msgpack.encode([1, 2, 3]),
    msgspec.msgpack.encode({"k": "say", "id": 5, "channel": "c", "text": "t"}),
])
def test_bad_bytes_raise_one_domain_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data)


def test_version_mismatch_is_named() -> None:
    future = msgspec.msgpack.encode({"k": "say", "v": 2, "id": "x", "channel": "c", "text": "t"})
    with pytest.raises(DecodeError, match="protocol version 2"):
        decode(future)
