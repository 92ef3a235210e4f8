"""Caller-pool bookkeeping for the router's load-balancing broker. Pure; ``now`` is injected.

The zguide "Paranoid Pirate" pattern: callers announce slots with ``ready`` and
keep announcing with heartbeats; a caller silent for ``liveness`` seconds, or one
that comes back with a new incarnation, has its in-flight requests requeued (to the
front, if their deadline still allows).  Late or duplicate results are ignored by id.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rosey.protocol import Request


@dataclass(slots=True)
class Job:
    request: Request
    enqueued_at: float
    caller: bytes | None = None
    dispatched_at: float = 0.0
    requeues: int = 0


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
    def __init__(self, liveness: float = 3.0, queue_max: int = 64):
        self.liveness = liveness
        self.queue_max = queue_max
        self.callers: dict[bytes, CallerInfo] = {}
        self.queue: deque[Job] = deque()
        self.in_flight: dict[str, Job] = {}

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
            job = self.in_flight.pop(request_id, None)
            if job is not None:
                job.caller = None
                job.requeues += 1
                self.queue.appendleft(job)
                requeued.append(job)
        return requeued

    # -- requests ----------------------------------------------------------

    def submit(self, job: Job) -> bool:
        """Queue a job; False when the queue is full (the caller of submit sheds it)."""
        if len(self.queue) >= self.queue_max:
            return False
        self.queue.append(job)
        return True

    def assign(self, now: float) -> list[tuple[bytes, Job]]:
        """Hand queued jobs to the callers with the most free slots."""
        assignments = []
        while self.queue:
            caller = max(self.callers.values(), key=lambda c: c.free, default=None)
            if caller is None or caller.free <= 0:
                break
            job = self.queue.popleft()
            job.caller = caller.identity
            job.dispatched_at = now
            caller.in_flight.add(job.request.id)
            self.in_flight[job.request.id] = job
            assignments.append((caller.identity, job))
        return assignments

    def unassign(self, request_id: str) -> list[Job]:
        """A send to the caller failed: put the job back at the front of the queue.  The
        caller is gone, so its other jobs go back too; all of them are returned, so that
        the flow ends those that had started posting (``Flow.requeued``)."""
        job = self.in_flight.pop(request_id, None)
        if job is None:
            return []
        requeued = []
        if job.caller is not None and job.caller in self.callers:
            self.callers[job.caller].in_flight.discard(request_id)
            requeued = self._drop_caller(job.caller)
        job.caller = None
        self.queue.appendleft(job)
        return [job, *requeued]

    def complete(self, request_id: str) -> Job | None:
        """The job a result answers, or None for a late or duplicate result."""
        job = self.in_flight.pop(request_id, None)
        if job is None:
            return None
        if job.caller is not None and job.caller in self.callers:
            self.callers[job.caller].in_flight.discard(request_id)
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
        out = Expired()
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
        return now - self.queue[0].enqueued_at if self.queue else 0.0
