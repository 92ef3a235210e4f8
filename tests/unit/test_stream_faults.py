"""Regressions: a streamed reply meets a dead caller, a failed send, its deadline or conn
giving it up.  Whatever happens, a reply that is showing ends with what was shown (never a
second answer, never the fallback), the provider is not asked again for it, slots stay
taken while a caller runs the call, and a closed reply stays closed.  The real router Flow
and Pool, sockets replaced by lists, a virtual clock (tests/unit/test_brain_flow.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rosey.protocol import Partial, Request, Result
from tests.unit.test_brain_flow import Rig
from tests.unit.test_stream_flow import S1, S2, S3, ask, partials

SHOWN = "alice: It is a 1968 film by Stanley Kubrick about a voyage to Jupiter."


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path)
    rig.pool.liveness = 3.0
    rig.caller(slots=8)
    yield rig
    rig.store.close()


def segments(rig: Rig, request: Request) -> list[tuple[int, bool, str]]:
    """The reply's segments as offered, in order (a re-offer of one is not listed again)."""
    offered = [(s.seq, s.final, s.text) for s in rig.says if s.id == request.id]
    return list(dict.fromkeys(offered))


def sent(rig: Rig, request: Request) -> int:
    return [r.id for r in rig.requests].count(request.id)


async def journal(rig: Rig, request: Request) -> tuple[str, str]:
    await rig.store.flush()
    rows = rig.store.query_sync("SELECT state, reply FROM journal WHERE id = ?", (request.id,))
    assert len(rows) == 1
    return rows[0][0], rows[0][1]


async def test_a_failed_send_ends_the_dead_callers_streamed_reply(rig: Rig) -> None:
    """The only caller is killed mid-stream; a new mention is sent to it before it comes
    back (EHOSTUNREACH).  Its streamed job must end there, not go to the new incarnation."""
    alice = await ask(rig, "alice")
    await partials(rig, alice, S1)
    reachable = False

    async def send(identity: bytes, request: Request) -> bool:
        rig.requests.append(request)
        return reachable

    rig.wire.send_request = send  # type: ignore[method-assign]
    bob = await ask(rig, "bob")  # the send fails: caller-0 is dropped, its jobs requeued
    assert segments(rig, alice) == [(0, False, SHOWN), (1, True, "")]  # ended, no fallback
    reachable = True
    await rig.flow.requeued(rig.pool.seen(b"caller-0", "new", 8, rig.now))
    await rig.flow.dispatch()
    assert sent(rig, alice) == 1  # the provider is not asked again for alice
    assert sent(rig, bob) == 2 and bob.id in rig.pool.in_flight  # bob's is, once it is back
    # Whatever answers alice now changes nothing.
    await rig.router.on_partial(Partial(id=alice.id, caller="caller-0", seq=0, text="No idea."))
    await rig.router.on_result(Result(id=alice.id, caller="caller-0", ok=True, text="No idea."))
    assert segments(rig, alice) == [(0, False, SHOWN), (1, True, "")]


async def test_a_restarted_caller_with_two_streams_is_sent_neither(rig: Rig) -> None:
    alice, bob = await ask(rig, "alice"), await ask(rig, "bob")
    await partials(rig, alice, S1)
    await partials(rig, bob, S1)
    await rig.flow.requeued(rig.pool.seen(b"caller-0", "new", 8, rig.now))
    await rig.flow.dispatch()
    assert len(rig.requests) == 2  # neither ended reply is asked for again
    assert [s[1:] for s in segments(rig, alice)] == [(False, SHOWN), (True, "")]
    assert [s[1:] for s in segments(rig, bob)] == [
        (False, SHOWN.replace("alice", "bob")), (True, "")]
    assert not rig.pool.queue and not rig.pool.in_flight
    # The new incarnation's slots are all free, and a new mention does go to it.
    assert rig.pool.callers[b"caller-0"].free == 8
    mod = await ask(rig, "Mod")
    assert rig.requests[-1].id == mod.id and rig.pool.in_flight[mod.id].caller == b"caller-0"


async def test_a_streamed_reply_past_its_deadline_ends_without_the_fallback(rig: Rig) -> None:
    alice = await ask(rig, "alice")
    await partials(rig, alice, S1)
    bob = await ask(rig, "bob")  # nothing shown yet: it still gets the fallback
    rig.now = alice.deadline + 1.0  # caller-0 silent since, past its liveness too
    await rig.router.tick()
    assert segments(rig, alice) == [(0, False, SHOWN), (1, True, "")]
    assert segments(rig, bob) == [(0, True, "bob: Sorry.")]
    assert alice.id not in rig.flow.streams and len(rig.requests) == 2
    assert await journal(rig, alice) == ("replied", SHOWN)
    for seq in (0, 1):
        rig.flow.on_delivered(alice.id, True, "", seq=seq, parts=1 - seq)
    assert await journal(rig, alice) == ("delivered", SHOWN)
    assert alice.id not in rig.flow.journaled and not any(k[0] == alice.id
                                                          for k in rig.flow.outbox)


async def test_a_shed_stream_whose_first_segment_was_acked_gets_a_final_segment(rig: Rig) -> None:
    alice = await ask(rig, "alice")
    await partials(rig, alice, S1, S2)
    rig.flow.on_delivered(alice.id, True, "", seq=0, parts=1)  # seg 1 held by conn's packer
    rig.now = alice.deadline + 1.0
    await rig.router.tick()
    assert [seq_final[:2] for seq_final in segments(rig, alice)] == [
        (0, False), (1, False), (2, True)]
    assert all(s.stream for s in rig.says if s.id == alice.id)
    assert "Sorry." not in " ".join(s.text for s in rig.says)
    rig.flow.on_delivered(alice.id, True, "", seq=1, parts=1)
    rig.flow.on_delivered(alice.id, True, "", seq=2, parts=0)
    assert (await journal(rig, alice))[0] == "delivered"


async def test_no_segment_follows_a_reply_conn_gave_up(rig: Rig) -> None:
    alice = await ask(rig, "alice")
    await partials(rig, alice, S1)
    rig.flow.on_delivered(alice.id, False, "spam filtered", seq=0)  # conn gave up on seg 0
    assert await journal(rig, alice) == ("delivered", SHOWN)
    await partials(rig, alice, S2, S3, start=1)
    await rig.answer(alice, S1 + S2 + S3)
    assert segments(rig, alice) == [(0, False, SHOWN)]  # nothing after the give-up
    assert not rig.flow.outbox and await journal(rig, alice) == ("delivered", SHOWN)
    # Its Result still frees the slot, and the next mention streams as usual.
    assert not rig.pool.in_flight and alice.id not in rig.flow.streams
    bob = await ask(rig, "bob")
    await partials(rig, bob, S1)
    assert segments(rig, bob) == [(0, False, SHOWN.replace("alice", "bob"))]


async def test_pieces_from_a_caller_that_no_longer_holds_the_job_are_ignored(rig: Rig) -> None:
    """caller-0 stalls past its liveness (alive, but looks dead): its job goes to caller-1.
    What caller-0 sends for it afterwards must neither post nor free caller-1's slot."""
    alice = await ask(rig, "alice")
    rig.pool.seen(b"caller-1", "one", 8, rig.now + 2.5)
    rig.now += 4.0
    await rig.router.tick()
    assert sent(rig, alice) == 2 and rig.pool.in_flight[alice.id].caller == b"caller-1"
    await partials(rig, alice, S1)  # from caller-0
    await rig.router.on_result(Result(id=alice.id, caller="caller-0", ok=True, text=S1))
    assert segments(rig, alice) == []
    assert alice.id in rig.pool.callers[b"caller-1"].in_flight  # still running it there
    # caller-1's own pieces and result are the answer.
    await rig.router.on_partial(Partial(id=alice.id, caller="caller-1", seq=0, text=S1))
    await rig.router.on_result(Result(id=alice.id, caller="caller-1", ok=True, text=S1 + S2))
    assert segments(rig, alice) == [(0, False, SHOWN), (1, True, S2)]
    assert not rig.pool.callers[b"caller-1"].in_flight
