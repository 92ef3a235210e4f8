"""The dispatch queue, fair across channels.  Pure: no clock, no I/O.

One FIFO per channel, served round-robin: the next job to go is the head of the channel
whose turn it is, then that channel goes to the back of the ring.  So a job waits behind
at most one job of each other channel plus the jobs of its own channel ahead of it; a
burst of 50 in one channel cannot starve a quiet one.  (The router's Pool looks at every
channel's head, ``peek_heads``, and gives a freed slot to the channel with the fewest
calls running, ties in ring order.)

Bounds: ``channel_max`` per channel and ``total_max`` in all.  When the whole queue is full,
a channel with fewer queued jobs than the longest one still gets in: the longest channel's
newest job is evicted (the caller of ``push`` sheds it, like a job refused outright).  A
channel at its own bound, or one that is itself the longest, is refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar


class Keyed(Protocol):
    @property
    def channel(self) -> str: ...


J = TypeVar("J", bound=Keyed)


class FairQueue(Generic[J]):
    def __init__(self, total_max: int, channel_max: int | None = None) -> None:
        self.total_max = total_max
        self.channel_max = channel_max if channel_max is not None else total_max
        self._queues: dict[str, deque[J]] = {}
        self._ring: deque[str] = deque()  # channels with queued jobs, next to serve first
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def __iter__(self) -> Iterator[J]:
        """Every queued job, channel by channel in ring order (not the exact serve order)."""
        for channel in list(self._ring):
            yield from list(self._queues[channel])

    def depth(self, channel: str) -> int:
        queue = self._queues.get(channel)
        return len(queue) if queue else 0

    def channels(self) -> list[str]:
        """The channels with queued jobs, the one served next first."""
        return list(self._ring)

    def full(self, channel: str) -> bool:
        """Whether a new job of ``channel`` would be refused."""
        mine = self.depth(channel)
        if mine >= self.channel_max:
            return True
        if self._size < self.total_max:
            return False
        return self._longest_other(channel) is None

    def push(self, job: J) -> tuple[bool, J | None]:
        """Queue ``job`` at the back of its channel.  Returns (accepted, evicted): a refused
        job is not queued; an evicted one was taken out to make room for it."""
        if self.full(job.channel):
            return False, None
        evicted = None
        if self._size >= self.total_max:
            victim = self._longest_other(job.channel)
            assert victim is not None  # full() said there is one
            evicted = self._queues[victim].pop()
            self._size -= 1
            self._forget_if_empty(victim)
        self._append(job, front=False)
        return True, evicted

    def push_front(self, job: J) -> None:
        """Put back a job that had been handed out (its caller died): it goes first in its
        channel, and its channel is served next.  Not bounded: it held a place already."""
        self._append(job, front=True)
        self._ring.remove(job.channel)
        self._ring.appendleft(job.channel)

    def peek_heads(self) -> list[J]:
        """Each channel's next job, in the order the channels are to be served."""
        return [self._queues[channel][0] for channel in self._ring]

    def pop(self, job: J) -> None:
        """Take ``job`` (a head from ``peek_heads``) out, and send its channel to the back
        of the ring: its turn is used."""
        channel = job.channel
        queue = self._queues[channel]
        assert queue[0] is job
        queue.popleft()
        self._size -= 1
        self._ring.remove(channel)
        if queue:
            self._ring.append(channel)
        else:
            del self._queues[channel]

    def remove(self, job: J) -> None:
        self._queues[job.channel].remove(job)
        self._size -= 1
        self._forget_if_empty(job.channel)

    def _append(self, job: J, front: bool) -> None:
        queue = self._queues.get(job.channel)
        if queue is None:
            queue = self._queues[job.channel] = deque()
            self._ring.append(job.channel)
        if front:
            queue.appendleft(job)
        else:
            queue.append(job)
        self._size += 1

    def _forget_if_empty(self, channel: str) -> None:
        if not self._queues[channel]:
            del self._queues[channel]
            self._ring.remove(channel)

    def _longest_other(self, channel: str) -> str | None:
        """The channel to evict from for ``channel``: the longest queue, if it is longer
        than ``channel``'s would be with the new job."""
        mine = self.depth(channel)
        longest = max(self._ring, key=lambda c: len(self._queues[c]), default=None)
        if longest is None or longest == channel or len(self._queues[longest]) <= mine + 1:
            return None
        return longest
