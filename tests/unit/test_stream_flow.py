"""A streamed answer through the real router Flow and conn Governor, sockets replaced by
lists and a virtual clock: segments, addressing, packing, clean ends, dead callers, PMs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from rosey.conn.governor import Governor
from rosey.conn.segments import Outcome
from rosey.protocol import Partial, Request, Say
from rosey.router.build import ListWire, build_router
from rosey.router.replies import ReplyPolicy
from rosey.router.resume import resume
from tests.unit.test_brain_flow import Rig

S1 = "Rosey: It is a **1968** film by Stanley Kubrick about a voyage to Jupiter."
S2 = " HAL, the ship's computer, is the one you remember."
S3 = " It still looks great today."
TAIL = " Watch it big."


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path, router={"blocklist": ["forbidden"]})
    rig.caller()
    yield rig
    rig.store.close()


async def ask(rig: Rig, user: str = "alice", private: bool = False) -> Request:
    if private:
        await rig.core.on_pm(user, "tell me about 2001", rig.now)
    else:
        await rig.core.on_chat(user, "rosey tell me about 2001", False, rig.now)
    return rig.requests[-1]


async def partials(rig: Rig, request: Request, *texts: str, start: int = 0) -> None:
    for seq, text in enumerate(texts, start):
        await rig.router.on_partial(Partial(id=request.id, caller="caller-0", seq=seq, text=text))


def post(governor: Governor, says: list[Say]) -> tuple[list[str], list[Outcome]]:
    """Feed Says to conn's governor, echo every part; the posted texts and outcomes."""
    posted: list[str] = []
    outcomes: list[Outcome] = []
    for say in says:
        governor.add(say, 0.0)
        while (part := governor.next_part(0.0)) is not None:
            posted.append(part.text)
            outcome = governor.on_echo(bool(part.pm_to))
            if outcome is not None:
                outcomes.append(outcome)
        outcomes += governor.expire(0.0)
    return posted, outcomes


async def test_a_streamed_answer_is_posted_a_sentence_first_then_packed(rig: Rig) -> None:
    request = await ask(rig)
    await partials(rig, request, S1)
    # The first piece is a segment at once, addressed, self prefix and markdown gone.
    assert [(s.seq, s.final, s.stream, s.text) for s in rig.says] == [
        (0, False, True, "alice: It is a 1968 film by Stanley Kubrick about a voyage to "
                         "Jupiter.")]
    governor = Governor(limit=100, max_parts=3)
    first, _ = post(governor, rig.says)
    assert first == [rig.says[0].text]  # posted before the rest of the answer exists
    await partials(rig, request, S2, S3, start=1)
    await rig.answer(request, S1 + S2 + S3 + TAIL)
    says = rig.says[1:]
    assert [(s.seq, s.final) for s in says] == [(1, False), (2, False), (3, True)]
    assert [s.text for s in says] == [S2, S3, TAIL]  # not addressed again; spaces kept
    rest, outcomes = post(governor, says)
    assert rest == ["HAL, the ship's computer, is the one you remember. It still looks great "
                    "today. Watch it big."]
    # Every segment is acknowledged once its text is in an echoed part, none before.
    assert sorted(o.seq for o in outcomes if o.ok) == [1, 2, 3]
    for outcome in outcomes:
        rig.flow.on_delivered(outcome.say_id, outcome.ok, outcome.reason, outcome.seq,
                              outcome.parts)
    rig.flow.on_delivered(request.id, True, "", 0, 1)
    assert not rig.flow.outbox  # the reply is delivered
    await rig.store.flush()
    history = [t.content for t in await rig.records.history("alice", 10)]
    assert history[-1] == ("It is a 1968 film by Stanley Kubrick about a voyage to Jupiter. "
                           "HAL, the ship's computer, is the one you remember. It still looks "
                           "great today. Watch it big.")


async def test_provider_dies_after_the_first_part_ends_cleanly_without_fallback(rig: Rig) -> None:
    request = await ask(rig)
    await partials(rig, request, S1)
    await rig.answer(request, "", ok=False)
    texts = [s.text for s in rig.says]
    assert texts[0].startswith("alice: It is a 1968 film") and texts[1:] == [""]
    assert rig.says[-1].final and "Sorry." not in " ".join(texts)
    posted, outcomes = post(Governor(limit=320), rig.says)
    assert posted == [texts[0]]  # the first sentence, once; nothing after it
    assert {o.seq for o in outcomes} == {0, 1}
    await rig.store.flush()
    assert [t.content for t in await rig.records.history("alice", 10)][-1] == \
        "It is a 1968 film by Stanley Kubrick about a voyage to Jupiter."
    # A failure before anything was shown still gets the fallback.
    request = await ask(rig, "bob")
    await rig.answer(request, "", ok=False)
    assert rig.says[-1].text == "bob: Sorry." and not rig.says[-1].stream


async def test_a_stream_cut_mid_sentence_ends_with_an_ellipsis(rig: Rig) -> None:
    request = await ask(rig)
    await partials(rig, request, "word " * 40)  # a long run cut at a space by the caller
    await rig.answer(request, "", ok=False)
    assert rig.says[-1].text == " …" and rig.says[-1].final


async def test_a_dead_caller_mid_stream_is_not_asked_again(rig: Rig) -> None:
    rig.pool.liveness = 3.0
    request = await ask(rig)
    await partials(rig, request, S1)
    rig.pool.seen(b"caller-1", "other", 4, rig.now + 2.5)  # another caller is alive
    rig.now += 4.0  # caller-0 silent past its liveness
    await rig.router.tick()
    assert len(rig.requests) == 1  # not re-dispatched: another answer would not join up
    finals = [s for s in rig.says if s.final]
    assert [(s.seq, s.text) for s in finals] == [(1, "")]
    # Its late pieces and result change nothing.
    offered = {(s.seq, s.text) for s in rig.says}
    await partials(rig, request, S2, start=1)
    await rig.answer(request, S1 + S2)
    assert {(s.seq, s.text) for s in rig.says} == offered
    # A caller that dies before any piece was shown: requeued as before.
    request = await ask(rig, "bob")
    rig.now += 4.0
    rig.pool.seen(b"caller-2", "third", 4, rig.now)
    await rig.router.tick()
    assert len(rig.requests) == 3 and rig.requests[-1].id == request.id


async def test_pm_streams_the_same_way_unaddressed(rig: Rig) -> None:
    request = await ask(rig, "alice", private=True)
    await partials(rig, request, S1, S2)
    await rig.answer(request, S1 + S2 + S3)
    assert {s.pm_to for s in rig.says} == {"alice"} and all(s.stream for s in rig.says)
    assert rig.says[0].text.startswith("It is a 1968")
    posted, _ = post(Governor(limit=320), rig.says)
    assert posted[0].startswith("It is a 1968") and len(posted) == 2


async def test_blocklist_mid_stream_ends_the_reply_there(rig: Rig) -> None:
    request = await ask(rig)
    await partials(rig, request, S1, " This part is forbidden.", S3)
    await rig.answer(request, S1 + " This part is forbidden." + S3)
    assert [s.text for s in rig.says][1:] == [""]
    assert "forbidden" not in " ".join(s.text for s in rig.says)


async def test_max_reply_chars_bounds_the_streamed_total(rig: Rig) -> None:
    lane = rig.core.lane
    rig.core.lane = replace(lane, policy=ReplyPolicy(lane.policy.bot_name, 100))
    request = await ask(rig)
    await partials(rig, request, S1, S2, S3)
    await rig.answer(request, S1 + S2 + S3)
    shown = "".join(s.text for s in rig.says).removeprefix("alice: ")
    assert len(shown) <= 100 and shown.endswith("…")


async def test_a_router_restarted_mid_stream_offers_only_what_was_shown(rig: Rig) -> None:
    request = await ask(rig)
    await partials(rig, request, S1)
    await rig.store.flush()
    shown = rig.says[0].text
    # A new router on the same database: the answer is not asked for again (another
    # answer would not join up); what was shown is re-offered as the whole reply, which
    # conn acknowledges without posting (its ledger has segment 0) or posts once.
    fresh = Rig.__new__(Rig)
    fresh.__dict__.update(rig.__dict__)
    fresh.wire = ListWire()
    fresh.requests, fresh.says = fresh.wire.requests, fresh.wire.says
    fresh.pool = type(rig.pool)(liveness=1e9)
    fresh.router = build_router(rig.cfg, wire=fresh.wire, pool=fresh.pool, store=rig.store,
                                clock=lambda: rig.now)
    fresh.flow = fresh.router.flow
    requeued, resent = await resume(fresh.flow, fresh.router.only.lane)
    assert (requeued, resent) == (0, 1)
    assert [(s.seq, s.final, s.text) for s in fresh.says] == [(0, True, shown)]
    assert fresh.requests == []
