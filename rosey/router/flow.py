"""Delivery, for every channel: accept → journal → dispatch → result → reply → delivered.

The sockets come in as one ``Wire`` (the service's, or a test's lists), so the whole flow
runs without ZeroMQ.  Each accepted trigger carries its channel's ``Lane`` (records, reply
policy, fallback, post TTL), fixed when it was accepted.  Exactly one reply per accepted
trigger: late or duplicate results are dropped by id, and the journal lets a restarted
router resume what it had accepted.  What a concluded request leaves for its channel's
conversation (history, statistics, budget) is handed back as ``Answered`` outcomes
(``concluded()``), never called into.

Replies leave through the outbox, one entry per reply segment ``(id, seq)``: an entry is
offered to conn at once and re-offered (``REOFFER`` s, backing off to ``REOFFER_MAX`` s, and
at once on any sign of conn) until conn acknowledges it with a Delivered or its post TTL
passes.  A refused send (conn not connected: ROUTER_MANDATORY, or its queue full) is never
dropped, only retried.  conn posts each segment at most once, so re-offers are free.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable

from rosey import metrics
from rosey.protocol import (
    PRIORITY_REPLY,
    Partial,
    Request,
    Result,
    Say,
    Turn,
    encode,
)
from rosey.router.dispatch import Job, Pool
from rosey.router.lane import Answered, Lane, Offer, Pending, Wire
from rosey.router.prompts import address
from rosey.router.records import JournalEntry, Records
from rosey.router.replies import finish
from rosey.router.streaming import Stream, accept, ending, piece

log = logging.getLogger("rosey.router")
OUTBOX_MAX = 256
REOFFER = 0.5  # s: first re-offer, and the interval while conn refuses
REOFFER_MAX = 2.0  # s: re-offer interval once conn has been taking the offers

SegKey = tuple[str, int]


class Flow:
    def __init__(self, *, pool: Pool, wire: Wire, clock: Callable[[], float] = time.time):
        self.pool = pool
        self.wire = wire
        self.clock = clock
        self._answered: list[Answered] = []  # outcomes not yet taken by concluded()
        self._depth_channels: set[str] = set()  # queue depth labels set so far
        self.pending: dict[str, Pending] = {}
        self.outbox: OrderedDict[SegKey, Offer] = OrderedDict()
        self.finals: set[str] = set()  # reply ids whose final segment is in the outbox
        self._refused = False  # some offer could not be sent: re-offer on conn's next word
        self.latencies: deque[float] = deque(maxlen=500)
        self.streams: dict[str, Stream] = {}  # streamed answers in progress, by request id
        self._first_seen: OrderedDict[str, None] = OrderedDict()  # replies with a part out
        # Says with a journal row (replies to triggers), so only those get closed, each
        # in its own channel's records.
        self.journaled: dict[str, Records] = {}

    def concluded(self) -> list[Answered]:
        """The requests concluded since the last call (their channels' conversations keep
        them).  The router takes them after every call into the flow."""
        done, self._answered = self._answered, []
        return done

    # ---- accepting -----------------------------------------------------------

    def open_for(self, channel: str, user: str, private: bool) -> tuple[str, Job] | None:
        """The user's unanswered request of the same kind in ``channel`` (a PM never joins
        a channel reply): ("queued", job) not yet dispatched, or ("in_flight", job)."""
        places = (("queued", self.pool.queue), ("in_flight", self.pool.in_flight.values()))
        for where, jobs in places:
            for job in jobs:
                pending = self.pending.get(job.request.id)
                if pending is not None and pending.private == private \
                        and pending.lane.channel == channel \
                        and pending.user.lower() == user.lower():
                    return where, job
        return None

    def rejournal(self, job: Job) -> None:
        """A coalesced turn changed a queued request: store it again (a restart resumes it)."""
        pending = self.pending.get(job.request.id)
        if pending is not None:
            self._journal(job.request, pending)

    def _journal(self, request: Request, pending: Pending) -> None:
        entry = JournalEntry(request.id, pending.user, pending.private, encode(request),
                             pending.received_at, request.deadline, "open", "", "")
        if pending.lane.records.journal_open(entry, self.clock()) is None:
            metrics.REQUESTS.labels(pending.lane.channel, "unjournaled").inc()

    def full(self, channel: str) -> bool:
        """Whether ``channel`` may queue no more: its own bound, or a total queue that has
        nothing longer to make room from (``FairQueue.full``), so a flood elsewhere cannot
        refuse a quiet channel."""
        return self.pool.full(channel)

    async def accept(self, lane: Lane, user: str, private: bool, received_at: float,
                     deadline: float, provider: str, model: str, turns: list[Turn]) -> str:
        now = self.clock()
        request = Request(id=uuid.uuid4().hex, deadline=deadline, provider=provider,
                          model=model, turns=turns)
        pending = self.pending[request.id] = Pending(user, lane, private, received_at)
        # Queued before dispatch, and the writer commits in queue order, so the reply's
        # own journal update can never overtake it.  Dispatch does not wait for the
        # commit (~1 ms): a crash in that window loses the entry whether or not the
        # call had started, and a result nobody journaled is simply dropped as late.
        self._journal(request, pending)
        await self._submit(Job(request, now, channel=lane.channel), pending)
        metrics.REQUESTS.labels(lane.channel, "accepted").inc()
        await self.dispatch()
        return request.id

    async def _submit(self, job: Job, pending: Pending) -> None:
        if not self.pool.submit(job):  # the queue is full: answer now rather than lose it
            self.pending.pop(job.request.id, None)
            metrics.REQUESTS.labels(pending.lane.channel, "shed").inc()
            await self.reply(job.request.id, pending, pending.lane.fallback, "fallback")

    async def dispatch(self) -> None:
        for identity, job in self.pool.assign(self.clock()):
            if job.caller != identity:  # an earlier failed send requeued it with its caller
                continue
            if not await self.wire.send_request(identity, job.request):
                log.warning("caller %s unreachable; requeueing %s", identity.decode(),
                            job.request.id)
                # The caller's other jobs go back too: one that was posting ends there.
                await self.requeued(self.pool.unassign(job.request.id))
        self._export_depth()
        metrics.IN_FLIGHT.set(len(self.pool.in_flight))
        metrics.CALLERS_ALIVE.set(self.pool.alive())
        metrics.JOURNAL_OPEN.set(len(self.pending) + len(self.outbox))

    # ---- answering -------------------------------------------------------------

    async def on_result(self, result: Result) -> None:
        # An endpoint failure with another endpoint to try puts the request back instead.
        if not self.pool.report(result, self.clock()):
            await self._conclude(result)
        await self.dispatch()

    async def _conclude(self, result: Result) -> None:
        """Reply to the request ``result`` answers; no dispatch (see ``requeued``)."""
        held = self.pool.in_flight.get(result.id)
        if held is not None and held.caller != result.caller.encode():
            # Another caller runs it now (it was requeued): its slot stays taken and its
            # own Result answers; taking this one would free that slot too early.
            metrics.REQUESTS.labels(self.channel_of(result.id), "late").inc()
            return
        # A result for a job that was requeued (its caller looked dead, or the router
        # restarted) still answers it: take it out of the queue instead of asking again.
        job = self.pool.complete(result.id) or self.pool.cancel(result.id)
        if job is None:  # late, or shed: the next tick answers a shed one (its fallback)
            metrics.REQUESTS.labels(self.channel_of(result.id), "late").inc()
            return
        pending = self.pending.pop(result.id, None)
        stream = self.streams.pop(result.id, None)
        if pending is None:
            metrics.REQUESTS.labels("", "late").inc()
            return
        if stream is not None and stream.segments:
            await self._end_stream(result, pending, stream)
            return
        text, kind = finish(pending.lane.policy, result.text) if result.ok else ("", "error")
        self._answered.append(Answered(pending.lane.channel, pending.user,
                                       text if kind == "llm" else "", result))
        if kind in ("llm", "blocked"):
            metrics.REQUESTS.labels(pending.lane.channel, "answered").inc()
            await self.reply(result.id, pending, text, kind)
            return
        metrics.REQUESTS.labels(pending.lane.channel,
                                f"error_{result.error_kind or 'empty'}").inc()
        log.warning("request %s failed after %.2f s: %s %s", result.id, result.latency,
                    result.error_kind or "empty", result.error)
        await self.reply(result.id, pending, pending.lane.fallback, "fallback")

    # ---- streamed answers (issue 13; rules in router/streaming.py) -----------

    async def on_partial(self, partial: Partial) -> None:
        """A piece of an answer still being written: post it as the next segment."""
        pending, job = self.pending.get(partial.id), self.pool.in_flight.get(partial.id)
        if pending is None or job is None or job.caller != partial.caller.encode():
            return  # late, or requeued (maybe to another caller): the pieces would not join up
        stream = self.streams.setdefault(partial.id, Stream())
        if not accept(stream, partial.seq, partial.text):
            return
        text = piece(pending.lane.policy, stream, partial.text)
        if text:
            await self._segment(partial.id, pending, stream, text, final=False)

    async def _segment(self, request_id: str, pending: Pending, stream: Stream, text: str,
                       final: bool, kind: str = "streaming") -> None:
        if stream.closed:  # conn gave the reply up (or it expired): it stays closed
            return
        pm_to, first = pending.user if pending.private else "", stream.segments == 0
        # What was shown so far: a restart re-offers just that.
        shown = stream.text if pm_to else address(pending.user, stream.text)
        pending.lane.records.journal_replied(request_id, shown, kind, self.clock())
        self.journaled[request_id] = pending.lane.records
        await self.say(pending.lane, address(pending.user, text) if first and not pm_to else text,
                       pm_to=pm_to, say_id=request_id, received_at=pending.received_at,
                       seq=stream.segments, final=final, stream=True)
        stream.segments += 1

    async def _end_stream(self, result: Result, pending: Pending, stream: Stream) -> None:
        """The final segment of a streamed reply, whether the answer completed or not."""
        rest = piece(pending.lane.policy, stream, result.text[stream.covered:]) if result.ok \
            else ""
        rest += ending(stream, result.ok)
        kind = "blocked" if stream.blocked else "llm" if result.ok else "cut_short"
        if not result.ok:
            log.warning("request %s failed after %d segments: %s %s; the reply ends there",
                        result.id, stream.segments, result.error_kind, result.error)
        metrics.REQUESTS.labels(pending.lane.channel, "answered" if result.ok else
                                f"error_{result.error_kind or 'empty'}").inc()
        metrics.REPLIES.labels(pending.lane.channel, kind).inc()
        self._answered.append(Answered(pending.lane.channel, pending.user, stream.text, result))
        await self._segment(result.id, pending, stream, rest, final=True, kind=kind)

    def channel_of(self, request_id: str) -> str:
        pending = self.pending.get(request_id)
        return pending.lane.channel if pending is not None else ""

    def count_requeued(self, jobs: list[Job]) -> None:
        for job in jobs:
            metrics.REQUESTS.labels(self.channel_of(job.request.id), "requeued").inc()

    def _export_depth(self) -> None:
        """``rosey_router_queue_depth{channel}``: every channel seen, 0 when none waits."""
        depth = dict.fromkeys(self._depth_channels, 0)
        for job in self.pool.queue:
            channel = self.channel_of(job.request.id)
            depth[channel] = depth.get(channel, 0) + 1
        self._depth_channels.update(depth)
        for channel, waiting in depth.items():
            metrics.QUEUE_DEPTH.labels(channel).set(waiting)

    async def requeued(self, jobs: list[Job]) -> None:
        """A dead caller's jobs, back in the queue: one that had started posting ends there
        (streaming.py).  No dispatch here: it would send the next of them, not yet ended, to
        a caller (the provider asked again); whoever requeued them dispatches after."""
        for job in jobs:
            stream = self.streams.get(job.request.id)
            if stream is not None and stream.segments:  # _conclude takes it off the queue
                await self._conclude(Result(id=job.request.id, caller="", ok=False,
                                            error_kind="connection", error="caller died"))
            self.streams.pop(job.request.id, None)

    async def reply(self, request_id: str, pending: Pending, text: str, kind: str) -> None:
        metrics.REPLIES.labels(pending.lane.channel, kind).inc()
        body = text if pending.private else address(pending.user, text)
        pending.lane.records.journal_replied(request_id, body, kind, self.clock())
        self.journaled[request_id] = pending.lane.records
        await self.say(pending.lane, body, pm_to=pending.user if pending.private else "",
                       say_id=request_id, received_at=pending.received_at)

    async def say(self, lane: Lane, text: str, *, pm_to: str = "", say_id: str = "",
                  received_at: float | None = None, priority: int = PRIORITY_REPLY,
                  seq: int = 0, final: bool = True, stream: bool = False) -> None:
        """Queue one segment of a reply for conn (a whole reply is segment 0, final)."""
        now = self.clock()
        say = Say(id=say_id or uuid.uuid4().hex, channel=lane.channel, text=text, pm_to=pm_to,
                  expires_at=(received_at or now) + lane.post_ttl, priority=priority,
                  seq=seq, final=final, stream=stream)
        key = (say.id, say.seq)
        if key in self.outbox:  # the same segment again: one offer is enough
            return
        offer = self.outbox[key] = Offer(say, received_at if received_at is not None else now)
        if final:
            self.finals.add(say.id)
        while len(self.outbox) > OUTBOX_MAX:
            (dropped_id, _), dropped = self.outbox.popitem(last=False)
            metrics.REPLIES.labels(dropped.say.channel, "dropped").inc()
            log.warning("outbox full: dropped reply %s", dropped_id)
            self._close(dropped_id, now)
        if key in self.outbox:
            await self._offer(offer, now)

    async def _offer(self, offer: Offer, now: float) -> None:
        if await self.wire.send_say(offer.say):
            offer.taken += 1
            metrics.SAY_OFFERS.labels("taken").inc()
            offer.refused = False
            offer.next_at = now + min(REOFFER * 2 ** (offer.taken - 1), REOFFER_MAX)
        else:  # conn is not connected (yet) or its queue is full: keep it, try again soon
            metrics.SAY_OFFERS.labels("refused").inc()
            offer.refused = self._refused = True
            offer.next_at = now + REOFFER

    def _close(self, say_id: str, now: float) -> None:
        """The reply is finished with (delivered, given up or expired): close its journal
        entry; any segment of it still in the outbox goes too."""
        self.finals.discard(say_id)
        if (stream := self.streams.get(say_id)) is not None:  # still streaming: no more of it
            stream.stopped = stream.closed = True
        for key in [k for k in self.outbox if k[0] == say_id]:
            del self.outbox[key]
        records = self.journaled.pop(say_id, None)
        if records is not None:
            records.journal_close(say_id, now)

    def _expire_outbox(self, now: float) -> None:
        for key, offer in list(self.outbox.items()):
            if key in self.outbox and offer.say.expires_at <= now:
                metrics.REPLIES.labels(offer.say.channel, "expired").inc()
                self._close(key[0], now)

    def on_delivered(self, say_id: str, ok: bool, reason: str, seq: int = 0,
                     parts: int = 1) -> None:
        """conn's acknowledgement of one segment (repeats of it are harmless)."""
        entry = self.outbox.pop((say_id, seq), None)
        if entry is None:
            metrics.SAY_OFFERS.labels("acked_again").inc()
            return
        channel = entry.say.channel
        metrics.REPLIES.labels(channel, "delivered" if ok else "undelivered").inc()
        now = self.clock()
        if ok and parts and say_id not in self._first_seen:  # the reply's first chat line
            self._first_seen[say_id] = None
            while len(self._first_seen) > OUTBOX_MAX:
                self._first_seen.popitem(last=False)
            metrics.FIRST_PART_LATENCY.labels(channel).observe(
                max(0.0, now - entry.received_at))
        if not ok:
            log.warning("reply %s segment %d not delivered: %s", say_id, seq, reason)
            self._close(say_id, now)
            return
        if say_id in self.finals and not any(k[0] == say_id for k in self.outbox):
            latency = max(0.0, now - entry.received_at)
            metrics.REPLY_LATENCY.labels(channel).observe(latency)
            self.latencies.append(latency)
            self._close(say_id, now)

    async def flush_outbox(self) -> None:
        """Offer every unacknowledged segment now (conn (re)appeared)."""
        now = self.clock()
        self._expire_outbox(now)
        self._refused = False
        for offer in list(self.outbox.values()):
            await self._offer(offer, now)

    async def on_peer(self) -> None:
        """conn said something: if an offer was refused, conn is back, so offer again now."""
        if self._refused:
            await self.flush_outbox()

    async def reoffer_due(self, now: float) -> None:
        for offer in list(self.outbox.values()):
            if offer.next_at <= now:
                await self._offer(offer, now)

    # ---- time ----------------------------------------------------------------

    async def tick(self) -> None:
        now = self.clock()
        expired = self.pool.expire(now)
        for identity in expired.dead_callers:
            log.warning("caller %s silent for %.1f s: dropped", identity.decode(),
                        self.pool.liveness)
        if expired.requeued:
            self.count_requeued(expired.requeued)
            await self.requeued(expired.requeued)
        for job in expired.shed:
            pending = self.pending.pop(job.request.id, None)
            stream = self.streams.pop(job.request.id, None)
            metrics.REQUESTS.labels(pending.lane.channel if pending else "", "shed").inc()
            if pending is not None and stream is not None and stream.segments:
                # It is showing: it ends with what was shown, never with the fallback.
                await self._end_stream(Result(id=job.request.id, caller="", ok=False,
                                              error_kind="timeout", error="deadline passed"),
                                       pending, stream)
            elif pending is not None:
                log.warning("request %s missed its deadline: fallback", job.request.id)
                await self.reply(job.request.id, pending, pending.lane.fallback, "fallback")
        self._expire_outbox(now)
        await self.reoffer_due(now)
        metrics.QUEUE_OLDEST.set(self.pool.oldest_age(now))
        await self.dispatch()

    def p95(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[int(0.95 * (len(ordered) - 1))]
