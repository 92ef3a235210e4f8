"""Caller-pool bookkeeping for the router's load-balancing broker.

The zguide "Paranoid Pirate" pattern: callers announce slots with ``ready`` and
keep announcing with heartbeats; a caller silent for ``liveness`` seconds, or one
that comes back with a new incarnation, has its in-flight requests requeued (to the
front, if their deadline still allows).  Late or duplicate results are ignored by id.

A job goes out when a caller has a free slot AND its provider has an endpoint with free
capacity (``rosey.router.endpoints``); the queue is fair across channels
(``rosey.router.fairqueue``).  Decisions are pure (``now`` is injected); the endpoint
counters are counted here, where each endpoint's verdicts are known.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec

from rosey import metrics
from rosey.protocol import Request, Result
from rosey.router.endpoints import Choice, Endpoints, export
from rosey.router.fairqueue import FairQueue


@dataclass(slots=True)
class Job:
    request: Request
    enqueued_at: float
    caller: bytes | None = None
    dispatched_at: float = 0.0
    requeues: int = 0
    channel: str = ""  # whose turn it is in the fair queue
    endpoint: str = ""  # the endpoint it runs on while in flight ("" : not scheduled)
    tried: frozenset[str] = frozenset()  # endpoints that failed it (handed back)


@dataclass(slots=True)
class CallerInfo:
    identity: bytes
    incarnation: str
    slots: int
    last_seen: float
    in_flight: set[str] = field(default_factory=set)

    @property
    def free(self) -> int:
        return self.slots - len(self.in_flight)


@dataclass(slots=True)
class Expired:
    """Jobs that can no longer be answered in time, and jobs put back in the queue."""

    shed: list[Job] = field(default_factory=list)
    requeued: list[Job] = field(default_factory=list)
    dead_callers: list[bytes] = field(default_factory=list)


class Pool:
    def __init__(self, liveness: float = 3.0, queue_max: int = 64,
                 endpoints: Endpoints | None = None, channel_max: int | None = None):
        self.liveness = liveness
        self.queue_max = queue_max
        self.endpoints = endpoints or Endpoints({})
        self.callers: dict[bytes, CallerInfo] = {}
        self.queue: FairQueue[Job] = FairQueue(queue_max, channel_max)
        self.in_flight: dict[str, Job] = {}
        self._evicted: list[Job] = []  # made room for another channel's job; shed next tick
        self._running: Counter[str] = Counter()  # in-flight jobs by channel

    # -- caller lifecycle --------------------------------------------------

    def seen(self, identity: bytes, incarnation: str, slots: int, now: float) -> list[Job]:
        """Record a ready/heartbeat; returns jobs requeued because the caller restarted."""
        info = self.callers.get(identity)
        if info is not None and info.incarnation == incarnation:
            info.last_seen = now
            info.slots = slots
            return []
        requeued = self._drop_caller(identity) if info is not None else []
        self.callers[identity] = CallerInfo(identity, incarnation, slots, now)
        return requeued

    def alive(self) -> int:
        return len(self.callers)

    def _drop_caller(self, identity: bytes) -> list[Job]:
        info = self.callers.pop(identity)
        requeued = []
        for request_id in sorted(info.in_flight, reverse=True):
            job = self._landed(request_id)
            if job is not None:
                self._release(job)
                job.caller = None
                job.requeues += 1
                self.queue.push_front(job)
                requeued.append(job)
        return requeued

    def _landed(self, request_id: str) -> Job | None:
        """Take a job out of flight (whatever happens to it next)."""
        job = self.in_flight.pop(request_id, None)
        if job is not None:
            self._running[job.channel] -= 1
            if self._running[job.channel] <= 0:
                del self._running[job.channel]
        return job

    def _release(self, job: Job) -> None:
        """The job no longer runs on its endpoint: free its place there (no verdict)."""
        if job.endpoint:
            self.endpoints.released(job.endpoint)
            job.endpoint = ""

    # -- requests ----------------------------------------------------------

    def full(self, channel: str = "") -> bool:
        """Whether a new job of ``channel`` would be refused (its share of the queue is
        taken, or the queue is full and no longer channel's job can make room)."""
        return self.queue.full(channel)

    def submit(self, job: Job) -> bool:
        """Queue a job; False when its channel may queue no more (the caller of submit
        sheds it).  A job evicted to make room is shed by the next ``expire``."""
        accepted, evicted = self.queue.push(job)
        if evicted is not None:
            self._evicted.append(evicted)
        return accepted

    def assign(self, now: float) -> list[tuple[bytes, Job]]:
        """Hand queued jobs, channel by channel in turn, to the callers with the most free
        slots and the endpoints with the least outstanding work."""
        assignments = []
        while self.queue:
            caller = max(self.callers.values(), key=lambda c: c.free, default=None)
            if caller is None or caller.free <= 0:
                break
            placed = self._place_next(now)
            if placed is None:  # every channel's next job waits for endpoint capacity
                break
            job, choice = placed
            self.queue.pop(job)
            if choice.name:
                self.endpoints.started(choice.name)
            job.endpoint = choice.name
            job.request = msgspec.structs.replace(
                job.request, endpoint=choice.name, endpoint_url=choice.url,
                hand_back=choice.hand_back)
            job.caller = caller.identity
            job.dispatched_at = now
            caller.in_flight.add(job.request.id)
            self.in_flight[job.request.id] = job
            self._running[job.channel] += 1
            assignments.append((caller.identity, job))
        export(self.endpoints)
        return assignments

    def _place_next(self, now: float) -> tuple[Job, Choice] | None:
        """The next job an endpoint can take now: of the channel with the fewest jobs in
        flight, ties in ring order.  A slot that frees goes to a quiet channel before one
        that already runs several (it cannot be taken back from a long call)."""
        heads = self.queue.peek_heads()
        for job in sorted(heads, key=lambda j: self._running[j.channel]):  # stable: ring order
            choice = self.endpoints.pick(job.request.provider, now, job.tried)
            if choice is not None:
                return job, choice
        return None

    def report(self, result: Result, now: float) -> bool:
        """Record what ``result`` says of its job's endpoint.  True when the job was handed
        back after its endpoint failed and is queued again for another endpoint: the flow
        must not conclude it (its channel's turn comes first)."""
        job = self.in_flight.get(result.id)
        if job is None or job.caller != result.caller.encode() or not job.endpoint:
            return False
        name = job.endpoint
        if result.ok and result.endpoint == name:
            latency = result.latency or now - job.dispatched_at
            self.endpoints.succeeded(name, latency, now)
            metrics.ENDPOINT_REQUESTS.labels(name, "ok").inc()
            metrics.ENDPOINT_LATENCY.labels(name).observe(latency)
        elif result.endpoint_failed and result.endpoint == name:
            self.endpoints.failed(name, now)
            metrics.ENDPOINT_REQUESTS.labels(name, "failed").inc()
        elif result.ok:  # a fallback elsewhere answered: no verdict on this endpoint
            self.endpoints.released(name)
        else:  # the model's or the request's own error: nothing against the endpoint
            self.endpoints.released(name)
            metrics.ENDPOINT_REQUESTS.labels(name, "error").inc()
        job.endpoint = ""
        handed_back = job.request.hand_back and result.endpoint_failed \
            and result.endpoint == name and job.request.deadline > now
        if not handed_back:
            return False
        self._landed(result.id)
        if job.caller in self.callers:
            self.callers[job.caller].in_flight.discard(result.id)
        job.caller = None
        job.tried = job.tried | {name}
        job.requeues += 1
        self.queue.push_front(job)
        return True

    def unassign(self, request_id: str) -> list[Job]:
        """A send to the caller failed: put the job back at the front of the queue.  The
        caller is gone, so its other jobs go back too; all of them are returned, so that
        the flow ends those that had started posting (``Flow.requeued``)."""
        job = self._landed(request_id)
        if job is None:
            return []
        requeued = []
        if job.caller is not None and job.caller in self.callers:
            self.callers[job.caller].in_flight.discard(request_id)
            requeued = self._drop_caller(job.caller)
        self._release(job)
        job.caller = None
        self.queue.push_front(job)
        return [job, *requeued]

    def complete(self, request_id: str) -> Job | None:
        """The job a result answers, or None for a late or duplicate result."""
        job = self._landed(request_id)
        if job is None:
            return None
        if job.caller is not None and job.caller in self.callers:
            self.callers[job.caller].in_flight.discard(request_id)
        self._release(job)
        return job

    def cancel(self, request_id: str) -> Job | None:
        """Withdraw a job wherever it is (queued or in flight)."""
        job = self.complete(request_id)
        if job is not None:
            return job
        for queued in self.queue:
            if queued.request.id == request_id:
                self.queue.remove(queued)
                return queued
        return None

    def expire(self, now: float, grace: float = 0.5) -> Expired:
        """Dead callers' jobs back to the queue; jobs past their deadline out.

        In-flight jobs get ``grace`` past the deadline so that the caller's own
        timeout result, which says what went wrong, normally arrives first."""
        out = Expired(shed=self._evicted)
        self._evicted = []
        for identity in [c.identity for c in self.callers.values()
                         if now - c.last_seen > self.liveness]:
            out.dead_callers.append(identity)
            out.requeued.extend(self._drop_caller(identity))
        for job in [j for j in self.in_flight.values() if j.request.deadline + grace <= now]:
            self.complete(job.request.id)
            out.shed.append(job)
        for job in [j for j in self.queue if j.request.deadline <= now]:
            self.queue.remove(job)
            out.shed.append(job)
        out.requeued = [j for j in out.requeued if j not in out.shed]
        return out

    def oldest_age(self, now: float) -> float:
        heads = self.queue.peek_heads()  # each channel's oldest
        return now - min(j.enqueued_at for j in heads) if heads else 0.0
