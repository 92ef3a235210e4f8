"""The router's outbox: reply segments offered until conn acknowledges them (virtual clock)."""

from __future__ import annotations

from rosey.protocol import Request, Say
from rosey.router.dispatch import Pool
from rosey.router.flow import REOFFER, REOFFER_MAX, Flow
from rosey.router.lane import Lane
from rosey.router.memrecords import MemoryRecords
from rosey.router.replies import ReplyPolicy


class Rig:
    def __init__(self) -> None:
        self.now = 1000.0
        self.up = True  # conn connected: sends are taken
        self.offers: list[Say] = []
        self.flow = Flow(pool=Pool(liveness=1e9), wire=self, clock=lambda: self.now)
        self.lane = Lane("c", MemoryRecords("c"), ReplyPolicy("rosey", 500), "Sorry.", 30)

    async def send_request(self, identity: bytes, request: Request) -> bool:
        return True

    async def send_say(self, say: Say) -> bool:
        if self.up:
            self.offers.append(say)
        return self.up

    async def run(self, seconds: float, step: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now += step
            await self.flow.tick()


async def test_a_refused_offer_is_kept_and_retried_until_acknowledged() -> None:
    rig = Rig()
    rig.up = False  # conn's DEALER still reconnecting after a router restart
    await rig.flow.say(rig.lane, "alice: hi", say_id="r1")
    assert rig.offers == [] and ("r1", 0) in rig.flow.outbox
    rig.up = True
    await rig.run(REOFFER + 0.05)  # no ConnState, no other message: the timer alone
    assert [(s.id, s.seq, s.final) for s in rig.offers] == [("r1", 0, True)]
    rig.flow.on_delivered("r1", True, "", seq=0)
    assert rig.flow.outbox == {}
    await rig.run(3 * REOFFER_MAX)
    assert len(rig.offers) == 1  # acknowledged: never offered again


async def test_taken_offers_are_re_offered_with_backoff_and_at_once_when_conn_speaks() -> None:
    rig = Rig()
    await rig.flow.say(rig.lane, "alice: hi", say_id="r1")
    await rig.run(10.0)
    gaps = [b.expires_at for b in rig.offers]  # same Say each time
    assert len(set(gaps)) == 1
    # 0.5, 1, 2, 2, 2 … s apart: conn may have lost one it took, but is not flooded.
    assert 5 <= len(rig.offers) <= 8, len(rig.offers)
    rig.up = False
    await rig.run(REOFFER_MAX)  # refused now
    rig.up = True
    before = len(rig.offers)
    await rig.flow.on_peer()  # conn said something: what it refused goes at once
    assert len(rig.offers) == before + 1


async def test_segments_are_acknowledged_apart_and_the_reply_closes_after_the_final() -> None:
    rig = Rig()
    await rig.flow.say(rig.lane, "alice: one.", say_id="r1", seq=0, final=False)
    await rig.flow.say(rig.lane, "Two.", say_id="r1", seq=1, final=True)
    await rig.flow.say(rig.lane, "Two.", say_id="r1", seq=1, final=True)  # the same segment again
    assert [(s.seq, s.final) for s in rig.offers] == [(0, False), (1, True)]
    rig.flow.on_delivered("r1", True, "", seq=1)
    assert list(rig.flow.outbox) == [("r1", 0)]  # segment 0 still waits
    assert not rig.flow.latencies
    rig.flow.on_delivered("r1", True, "", seq=0)
    assert rig.flow.outbox == {} and len(rig.flow.latencies) == 1
    rig.flow.on_delivered("r1", True, "", seq=0)  # a repeat is harmless
    assert rig.flow.outbox == {}


async def test_an_unacknowledged_segment_expires_at_its_post_ttl() -> None:
    rig = Rig()
    rig.up = False
    await rig.flow.say(rig.lane, "alice: hi", say_id="r1")
    await rig.run(29.0)
    assert ("r1", 0) in rig.flow.outbox
    await rig.run(1.5)
    assert rig.flow.outbox == {} and rig.offers == []
