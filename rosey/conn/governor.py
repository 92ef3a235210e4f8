"""The outbound governor: the only path to ``chatMsg``/``pm``. Pure; the clock is injected.

CyTube drops a message over its flood limit with nothing but a ``cooldown`` event, so every
part is paced under the server's limit, kept in a FIFO of outstanding sends, and resolved by
its echo (delivered), a ``cooldown`` (re-sent first, after the delay the server named), an
error (failed) or a timeout. A Say is delivered when all its parts are.

Parts wait in one queue per priority (lower first): replies to people go before operator
notices, which go before conn's own keep-alive. Parts of one Say share a priority, so they
stay in order.

A Say is one *segment* ``(id, seq)`` of a reply; everything here is keyed by that pair.  A
segment conn may already have posted before it died comes back with a ``Prior`` (from
conn's post ledger): its confirmed parts are not queued again, and its parts emitted without
an echo are held until the join replay shows whether the server got them.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from rosey.config_schema import MESSAGE_LENGTH_DEFAULT
from rosey.conn.packer import Streams
from rosey.conn.segments import Outcome, Part, Prior, SegKey, Tracked
from rosey.conn.split import split_message
from rosey.protocol import Say

# The server's per-user limiter (src/utilities.js newRateLimiter): after ``cooldown``
# seconds of quiet the count resets; up to ``burst`` messages pass; after that one per
# 1/sustained s.  Everyone gets (20, 10/s); rank < 2 gets the channel's antiflood
# params (default 4, 1/s, cooldown 4 s) when it is on.
SERVER_DEFAULT = (20, 10.0)
SERVER_ANTIFLOOD = (4, 1.0)
# Margins for the skew between when we emit and when the server's Date.now() sees it (the
# server measures arrival times; a late frame followed by a prompt one shrinks the gap).
# Small on purpose: 100 queued replies must finish within 1.1 x the limiter's minimum.
BURST_MARGIN = 1  # messages of the burst kept in hand
GAP_MARGIN = 1.05  # stretch of the sustained interval
QUIET_MARGIN = 0.3  # extra seconds of quiet before we assume the server's count reset
PRIORITY_KEEPALIVE = 9
# A replayed line of ours matches a part emitted before a crash only if the server stamped it
# no earlier than this many seconds before we emitted it (clock skew between the hosts): an
# older identical line ("alice: Sorry!") is an earlier reply, not this one.
REPLAY_SKEW = 30.0
REPLAYED_KEPT = 32  # the server replays 15 lines per join
DONE_KEPT = 1024  # segments finished lately, whose Delivered may not be in the ledger yet


@dataclass
class Governor:
    limit: int = MESSAGE_LENGTH_DEFAULT
    max_parts: int = 3
    echo_timeout: float = 10.0
    max_resends: int = 5
    burst: int = SERVER_DEFAULT[0]
    sustained: float = SERVER_DEFAULT[1]
    cooldown: float | None = None  # the server's default: burst / sustained
    muted: bool = False  # noflood: chat is refused until the channel unmutes us
    queues: dict[int, deque[Part]] = field(default_factory=dict)
    outstanding: deque[Part] = field(default_factory=deque)
    _says: dict[SegKey, Tracked] = field(default_factory=dict)
    # Own lines of the latest join replay, (text, server time s): a Say re-offered after a
    # conn restart may arrive after the replay that proves its part was posted.
    replayed: deque[tuple[str, float]] = field(default_factory=lambda: deque(maxlen=REPLAYED_KEPT))
    confirmed: list[Part] = field(default_factory=list)  # echoed parts, for conn's ledger
    finished: list[Outcome] = field(default_factory=list)  # resolved at intake (a Prior)
    streams: Streams = field(default_factory=Streams)  # packers of streamed replies
    _held_parts: dict[SegKey, int] = field(default_factory=dict)  # posted, still riding
    # Finished segments and their outcome: a re-offer that arrives before conn's ledger has
    # the outcome must not be queued again (nor a rider of it be left waiting).
    _done: OrderedDict[SegKey, bool] = field(default_factory=OrderedDict)
    _count: int = 0
    _last_sent: float = float("-inf")
    _hold_until: float = float("-inf")

    # ---- configuration from live events ---------------------------------------------------

    def set_pace(self, burst: int, sustained: float, cooldown: float | None = None) -> None:
        """The server's limiter parameters for this user (not ours: margins are applied)."""
        self.burst, self.sustained, self.cooldown = burst, sustained, cooldown

    def set_limit(self, limit: int) -> None:
        """The channel's message length; applies to Says added from now on."""
        self.limit = limit

    # ---- intake ---------------------------------------------------------------------------

    def add(self, say: Say, now: float, prior: Prior | None = None,
            may_start: bool = True) -> int:
        """Queue a Say's parts; returns how many (0 for an empty or duplicate Say).

        With a ``prior`` its split is reused, confirmed parts are skipped and emitted ones
        are held as ``maybe_sent`` (or confirmed at once by a replayed line); a prior with a
        ``carrier`` resumes that carrier segment, which finishes this one.  ``may_start``:
        see ``Streams.take``."""
        key = (say.id, say.seq)
        if key in self._says or key in self._done or self.streams.fed(*key):
            return 0  # queued, just finished (its Delivered is on its way), or packed here
        riders: list[int] = []
        held = False
        if prior is not None:
            if prior.carrier is not None:  # its text went out in a later segment's part
                carrier = (say.id, prior.carrier)
                if carrier in self._says:
                    riders = self._says[carrier].riders
                    riders.extend([] if say.seq in riders else [say.seq])
                    return 0
                if carrier in self._done:
                    self._finish_riders(say.id, [say.seq], self._done[carrier], now)
                    return 0
                key, riders = carrier, [say.seq]
            if say.stream:  # a new packer takes the segments after the resumed one
                self.streams.skip(say.id, key[1], self.limit, self.max_parts)
            parts = prior.parts
        elif say.stream:  # a streamed reply's segments are packed (packer.py)
            taken = self.streams.take(say.id, say.seq, say.text, say.final, self.limit,
                                      self.max_parts, may_start)
            parts, riders, held = taken or ([], [], True)
            if not parts:
                self._finish_riders(say.id, riders, True, now)
                return 0
        elif self.streams.known(say.id):  # a restarted router's whole re-offer of a reply
            # streamed here: end_stream posted what was held; the rest was streamed.
            self._finish_riders(say.id, [say.seq], True, now)
            return 0
        else:
            parts = split_message(say.text, self.limit, self.max_parts)
        return self._queue(say, key[1], parts, riders, held, prior, now)

    def end_stream(self, say: Say, now: float) -> None:
        """A restarted router re-offers a reply it was streaming as one whole Say (seq 0,
        the text it had shown, not streamed): no more segments will come, so what the
        packer holds goes out now, as a last segment of its own that finishes the held
        ones.  The whole text is not split and posted again (``add``)."""
        ended = self.streams.end(say.id, say.text)
        if ended is None:
            return
        seq, parts, riders = ended
        if parts:
            self._queue(say, seq, parts, riders, False, None, now)
        else:
            self._finish_riders(say.id, riders, True, now)

    def _queue(self, say: Say, seq: int, parts: list[str], riders: list[int], held: bool,
               prior: Prior | None, now: float) -> int:
        if not parts:
            return 0
        key = (say.id, seq)
        tracked = self._says[key] = Tracked(len(parts), received_at=now, parts=parts,
                                            riders=riders, held=held)
        queue = self.queues.setdefault(say.priority, deque())
        queued = 0
        for index, text in enumerate(parts):
            part = Part(say.id, text, say.pm_to, index, say.expires_at, say.priority, seq=seq)
            if prior and index in prior.confirmed:
                tracked.confirmed += 1
                continue
            if prior and index in prior.emitted:
                part.maybe_sent, part.sent_at = True, prior.emitted[index]
                # A PM is never replayed, so nothing can show it arrived: at most once.
                if part.pm_to or self._take_replayed(part):
                    tracked.confirmed += 1
                    self.confirmed.append(part)
                    continue
            queue.append(part)
            queued += 1
        if tracked.confirmed == tracked.total:
            del self._says[key]
            self._finish_riders(say.id, riders, True, now)
            self.finished.append(self._done_with(Outcome(say.id, True, tracked.total,
                                                         received_at=now, seq=seq)))
        return queued

    def riders_of(self, key: SegKey) -> list[int]:
        """The segments whose text rides on this one's parts (for conn's ledger)."""
        tracked = self._says.get(key)
        return tracked.riders if tracked else []

    def _done_with(self, outcome: Outcome) -> Outcome:
        self._done[(outcome.say_id, outcome.seq)] = outcome.ok
        while len(self._done) > DONE_KEPT:
            self._done.popitem(last=False)
        return outcome

    def parts_of(self, key: SegKey) -> list[str]:
        tracked = self._says.get(key)
        return tracked.parts if tracked else []

    def add_command(self, text: str, expires_at: float, priority: int = PRIORITY_KEEPALIVE) -> None:
        """A chat command (``/afk``) that counts against the limiter but is never echoed."""
        self.queues.setdefault(priority, deque()).append(
            Part("", text, "", 0, expires_at, priority, echo=False))

    def cancel_commands(self, text: str) -> int:
        removed = 0
        for queue in self.queues.values():
            keep = deque(p for p in queue if p.echo or p.text != text)
            removed += len(queue) - len(keep)
            queue.clear()
            queue.extend(keep)
        return removed

    def received_at(self, key: SegKey) -> float | None:
        tracked = self._says.get(key)
        return tracked.received_at if tracked else None

    # ---- pacing ---------------------------------------------------------------------------

    def _wait(self, now: float) -> float:
        """Seconds until the server's limiter would accept one more message from us."""
        quiet = self.cooldown if self.cooldown is not None else self.burst / self.sustained
        hold = max(0.0, self._hold_until - now)
        if now - self._last_sent > quiet + QUIET_MARGIN and hold == 0:
            self._count = 0
        if self._count < max(1, self.burst - BURST_MARGIN):
            return hold
        return max(hold, self._last_sent + GAP_MARGIN / self.sustained - now)

    def _head(self) -> tuple[deque[Part], Part] | None:
        for priority in sorted(self.queues):
            queue = self.queues[priority]
            for part in queue:
                if part.pm_to or not self.muted:
                    return queue, part
        return None

    def next_part(self, now: float) -> Part | None:
        """The part to emit now, or None (nothing sendable, or wait ``delay()``)."""
        head = self._head()
        if head is None or self._wait(now) > 0:
            return None
        queue, part = head
        queue.remove(part)
        self._count += 1
        self._last_sent = now
        part.sent_at = now
        if part.echo:
            self.outstanding.append(part)
        return part

    def delay(self, now: float) -> float:
        """Seconds until the next part may go out (inf when nothing is sendable)."""
        return self._wait(now) if self._head() is not None else float("inf")

    # ---- resolution -----------------------------------------------------------------------

    def _oldest(self, private: bool) -> Part | None:
        for part in self.outstanding:
            if bool(part.pm_to) == private:
                return part
        return None

    def _confirm(self, part: Part) -> Outcome | None:
        tracked = self._says.get(part.key)
        if tracked is None:
            return None
        tracked.confirmed += 1
        self.confirmed.append(part)
        if tracked.confirmed == tracked.total:
            del self._says[part.key]
            self._finish_riders(part.say_id, tracked.riders, True, tracked.received_at)
            if tracked.held:  # reported when a later segment carries the rest of its text
                if len(self._held_parts) > 1024:  # riders of replies given up on
                    self._held_parts.clear()
                self._held_parts[part.key] = tracked.total
                return None
            return self._done_with(Outcome(part.say_id, True, tracked.total,
                                           received_at=tracked.received_at, seq=part.seq))
        return None

    def on_echo(self, private: bool) -> Outcome | None:
        """Our own chatMsg (or pm) came back: the oldest outstanding one of that kind is in."""
        part = self._oldest(private)
        if part is None:
            return None
        self.outstanding.remove(part)
        return self._confirm(part)

    def on_replayed_echo(self, text: str, time_s: float) -> Outcome | None:
        """A line of ours in a join replay: a part re-queued after a disconnect (or a crash
        of conn) whose text it is had reached the server after all, so it must not be
        posted twice.  Kept for Says that arrive after the replay."""
        for queue in self.queues.values():
            for part in queue:
                if part.maybe_sent and not part.pm_to and _same_line(part, text, time_s):
                    queue.remove(part)
                    return self._confirm(part)
        self.replayed.append((text, time_s))
        return None

    def new_join(self) -> None:
        """A join is starting: the previous replay says nothing about what happens next."""
        self.replayed.clear()

    def _take_replayed(self, part: Part) -> bool:
        if part.pm_to:  # PMs are never replayed
            return False
        for line in self.replayed:
            if _same_line(part, *line):
                self.replayed.remove(line)
                return True
        return False

    def on_cooldown(self, now: float, ms: float) -> Part | None:
        """The server dropped our oldest outstanding message: send it again first, once the
        ``ms`` it named have passed."""
        self._hold_until = max(self._hold_until, now + ms / 1000.0)
        # The server is past its burst: from now on one message per interval.
        self._count = max(self._count, self.burst)
        part = self.outstanding.popleft() if self.outstanding else None
        if part is None:
            return None
        part.resends += 1
        if part.resends > self.max_resends:
            self._fail(part.key, "cooldown")
            return None
        self.queues.setdefault(part.priority, deque()).appendleft(part)
        return part

    def on_error(self, private: bool, reason: str) -> Outcome | None:
        """The server refused our oldest outstanding chat (or pm) with an error."""
        part = self._oldest(private)
        if part is None:
            return None
        self.outstanding.remove(part)
        return self._fail(part.key, reason)

    def _fail(self, key: SegKey, reason: str) -> Outcome | None:
        tracked = self._says.pop(key, None)
        unsent = sum(1 for q in self.queues.values() for p in q if p.key == key)
        unsent += sum(1 for p in self.outstanding if p.key == key)
        for priority, queue in self.queues.items():
            self.queues[priority] = deque(p for p in queue if p.key != key)
        self.outstanding = deque(p for p in self.outstanding if p.key != key)
        if tracked is None:
            return None
        self._finish_riders(key[0], tracked.riders, False, tracked.received_at, reason)
        return self._done_with(Outcome(key[0], False, tracked.total, reason, unsent,
                                       tracked.received_at, seq=key[1]))

    def _finish_riders(self, say_id: str, seqs: list[int], ok: bool, received_at: float,
                       reason: str = "") -> None:
        """Streamed segments whose text went out in another segment's parts."""
        self.finished.extend(self._done_with(Outcome(say_id, ok, self._held_parts.pop(
            (say_id, seq), 0), reason, received_at=received_at, seq=seq)) for seq in seqs)

    def unsent(self, part: Part) -> None:
        """The emit of ``next_part`` failed before anything went on the wire: it goes back
        to the head of its queue as never sent."""
        if part in self.outstanding:
            self.outstanding.remove(part)
        self.queues.setdefault(part.priority, deque()).appendleft(part)

    def on_disconnect(self) -> None:
        """Unconfirmed sends died with the socket: send them again first, on a fresh limiter
        (the server's limiter belongs to the socket's user object), as *maybe sent* for the
        join replay to settle.  A PM is never replayed: it counts as sent (at most once)."""
        while self.outstanding:
            part = self.outstanding.pop()
            if part.pm_to:
                outcome = self._confirm(part)
                self.finished.extend([outcome] if outcome else [])
                continue
            part.maybe_sent = True
            self.queues.setdefault(part.priority, deque()).appendleft(part)
        self._count, self._last_sent = 0, float("-inf")
        self._hold_until = float("-inf")

    def expire(self, now: float) -> list[Outcome]:
        """Drop Says past their post TTL, and those whose echo never came."""
        outcomes, self.finished = self.finished, []
        for queue in list(self.queues.values()):
            for part in list(queue):
                if not part.echo and part.expires_at and part.expires_at <= now:
                    queue.remove(part)  # a stale keep-alive: nothing to report
        waiting = [(p, False) for q in self.queues.values() for p in q]
        for part, in_flight in waiting + [(p, True) for p in self.outstanding]:
            if part.key not in self._says:
                continue
            if part.expires_at and part.expires_at <= now:
                outcome = self._fail(part.key, "expired")
            elif in_flight and now - part.sent_at > self.echo_timeout:
                outcome = self._fail(part.key, "no echo")
            else:
                continue
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def depth(self) -> int:
        return sum(len(q) for q in self.queues.values())


def _same_line(part: Part, text: str, time_s: float) -> bool:
    return part.text.strip() == text.strip() and time_s >= part.sent_at - REPLAY_SKEW
