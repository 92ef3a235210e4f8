"""A restarted router takes back what the previous one accepted (its journal).

``open`` rows are dispatched again (a caller that still runs one answers once, one that
answered re-sends its cached Result) or, past their deadline, get the fallback; ``replied``
rows go back to the outbox as one segment (seq 0, the text shown so far) for conn, which
acknowledges without posting what its ledger has.  Rows past the post TTL are closed.
Part of ``Flow`` (router/flow.py), kept in its own module for size.
"""

from __future__ import annotations

import logging

from rosey import metrics
from rosey.protocol import DecodeError, Request, decode
from rosey.router.dispatch import Job
from rosey.router.flow import Flow
from rosey.router.lane import Lane, Pending

log = logging.getLogger("rosey.router")


async def resume(flow: Flow, lane: Lane) -> tuple[int, int]:
    """Take back what a previous router accepted in ``lane``'s channel (its journal);
    returns (requeued, re-sent)."""
    now = flow.clock()
    requeued = resent = 0
    for entry in lane.records.load_journal():
        pending = Pending(entry.username, lane, entry.private, entry.received_at)
        flow.journaled[entry.id] = lane.records
        if entry.state == "replied":
            if entry.received_at + lane.post_ttl > now:
                pm_to = entry.username if entry.private else ""
                await flow.say(lane, entry.reply, pm_to=pm_to, say_id=entry.id,
                               received_at=entry.received_at)
                resent += 1
            else:
                flow._close(entry.id, now)
            continue
        try:
            request = decode(entry.request)
        except DecodeError:
            request = None
        if isinstance(request, Request) and request.deadline > now:
            flow.pending[entry.id] = pending
            await flow._submit(Job(request, now, channel=lane.channel), pending)
            requeued += 1
        elif entry.received_at + lane.post_ttl > now:
            await flow.reply(entry.id, pending, lane.fallback, "fallback")
        else:
            flow._close(entry.id, now)
    if requeued or resent:
        metrics.REQUESTS.labels(lane.channel, "resumed").inc(requeued)
        log.info("resumed %d accepted triggers and %d undelivered replies", requeued, resent)
    await flow.dispatch()
    return requeued, resent
