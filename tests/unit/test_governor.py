"""The outbound governor on a virtual clock: pacing against a simulation of CyTube's limiter,
echo FIFO, cooldown re-sends, priorities, mutes, the post TTL and keep-alive commands."""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

import pytest

from fakes.cytube_filters import RateLimiter
from rosey.conn.governor import Governor
from rosey.protocol import PRIORITY_OTHER, Say


def say(n: int, text: str = "hello", pm_to: str = "", expires_at: float = 1e9,
        priority: int = 0) -> Say:
    return Say(id=f"s{n}", channel="c", text=text, pm_to=pm_to, expires_at=expires_at,
               priority=priority)


def drain(gov: Governor, now: float) -> list[str]:
    sent = []
    while (part := gov.next_part(now)) is not None:
        sent.append(part.text)
    return sent


# ---- a pure simulation of the server's limiter (PROTOCOL §6.5, src/utilities.js) ------------


class Limiter:
    """newRateLimiter: reset after ``cooldown`` s of quiet, ``burst`` pass, then 1/sustained."""

    def __init__(self) -> None:
        self.count, self.last = 0, -math.inf

    def throttle(self, now: float, burst: float, sustained: float, cooldown: float) -> bool:
        if self.last < now - cooldown:
            self.count, self.last = 1, now
            return False
        if self.count < burst:
            self.count, self.last = self.count + 1, now
            return False
        if now - self.last < 1.0 / sustained:
            return True
        self.last = now
        return False


@dataclass
class Server:
    """One user's view of chat.js: the 20/10 floor always, the channel's antiflood params on
    top for rank < 2. Returns the ``cooldown`` payload (ms) of a dropped message, or None."""

    rank: float = 2
    antiflood: tuple[float, float, float] | None = None
    floor: Limiter = field(default_factory=Limiter)
    channel: Limiter = field(default_factory=Limiter)

    def receive(self, now: float) -> float | None:
        if self.floor.throttle(now, 20, 10, 2):
            return 100.0
        if self.antiflood and self.rank < 2:
            burst, sustained, cooldown = self.antiflood
            if self.channel.throttle(now, burst, sustained, cooldown):
                return 1000 / sustained
        return None


def test_the_simulation_agrees_with_the_fake_servers_limiter() -> None:
    rng = random.Random(7)
    for params in ((20, 10, 2), (4, 1, 4), (7, 2.5, 2.8)):
        ours, fakes = Limiter(), RateLimiter()
        now = 0.0
        for _ in range(2000):
            now += rng.choice((0.0, 0.01, 0.09, 0.1, 0.4, 1.0, 3.0, 5.0)) * rng.random()
            assert ours.throttle(now, *params) == fakes.throttle(now, *params)
    server = Server()  # the recorded facts: 30 at once -> 20 pass, 10 get "cooldown 100"
    assert [server.receive(0.0) for _ in range(30)] == [None] * 20 + [100.0] * 10
    server = Server(rank=1, antiflood=(4, 1, 4))  # antiflood: 10 at once -> 4 pass
    assert [server.receive(0.0) for _ in range(10)] == [None] * 4 + [1000.0] * 6
    assert [server.receive(1.1 * k) for k in range(1, 6)] == [None] * 5


def simulate(gov: Governor, server: Server, says: list[Say], latency: float = 0.005
             ) -> tuple[float, int, list[str]]:
    """Run governor and server on one virtual clock until every Say is resolved.

    Returns (time of the last emit, cooldowns received, ids delivered in order)."""
    now, last_emit, cooldowns = 0.0, 0.0, 0
    for s in says:
        gov.add(s, now)
    delivered: list[str] = []
    inbox: list[tuple[float, int, str, float]] = []  # (arrival, seq, kind, ms)
    seq = 0
    while len(delivered) < len(says):
        while gov.next_part(now) is not None:
            last_emit = now
            dropped = server.receive(now)
            seq += 1
            heapq.heappush(inbox, (now + latency, seq, "echo" if dropped is None else "cd",
                                   dropped or 0.0))
        wake = now + gov.delay(now)
        if inbox and inbox[0][0] <= wake:
            now, _, kind, ms = heapq.heappop(inbox)
            if kind == "cd":
                cooldowns += 1
                gov.on_cooldown(now, ms)
            elif (outcome := gov.on_echo(private=False)) is not None:
                assert outcome.ok
                delivered.append(outcome.say_id)
        elif math.isfinite(wake):
            now = wake
        else:
            raise AssertionError("stuck: nothing queued, nothing in flight")
        assert now < 10_000
    return last_emit, cooldowns, delivered


@pytest.mark.parametrize(("rank", "antiflood", "burst", "sustained"), [
    (2, None, 20, 10.0),  # the floor every user has
    (1, (4, 1.0, 4.0), 4, 1.0),  # the channel's default antiflood, rank 1
    (1, (10, 2.0, 5.0), 10, 2.0),
])
def test_100_replies_at_once_all_delivered_without_drops_near_the_minimal_time(
        rank: float, antiflood: tuple[float, float, float] | None, burst: int,
        sustained: float) -> None:
    gov = Governor()
    if antiflood:
        gov.set_pace(burst, sustained, antiflood[2])
    says = [say(n, f"alice: answer number {n}") for n in range(100)]
    finished, cooldowns, delivered = simulate(gov, Server(rank, antiflood), says)
    assert delivered == [s.id for s in says]  # all of them, in order
    assert cooldowns == 0
    minimal = (100 - burst) / sustained  # burst at once, then one per interval
    assert minimal * 0.99 < finished <= 1.1 * minimal
    # the control case: without pacing the same server drops most of them
    server, dropped = Server(rank, antiflood), 0
    for _ in range(100):
        dropped += server.receive(0.0) is not None
    assert dropped == 100 - burst


def test_pacing_recovers_when_the_server_dropped_one_anyway() -> None:
    gov = Governor()
    server = Server()
    server.floor.count, server.floor.last = 20, 0.0  # someone else's burst just before ours
    finished, cooldowns, delivered = simulate(gov, server, [say(n) for n in range(30)])
    assert len(delivered) == 30 and cooldowns >= 1
    assert finished < 5.0


def test_cooldown_resends_first_after_the_named_delay() -> None:
    gov = Governor()
    gov.add(say(1, "one"), 0.0)
    gov.add(say(2, "two"), 0.0)
    assert drain(gov, 0.0) == ["one", "two"]
    assert gov.on_echo(False) is not None  # "one" arrived
    resent = gov.on_cooldown(0.01, 1000)  # "two" was dropped: the server said wait 1000 ms
    assert resent is not None and resent.text == "two" and resent.resends == 1
    assert gov.next_part(0.5) is None
    assert gov.delay(0.5) == pytest.approx(0.51)
    assert drain(gov, 1.01) == ["two"]
    outcome = gov.on_echo(False)
    assert outcome is not None and outcome.ok and outcome.say_id == "s2"


def test_a_message_the_server_keeps_refusing_fails_after_max_resends() -> None:
    gov = Governor(max_resends=2)
    gov.add(say(1, "x"), 0.0)
    now = 0.0
    for _ in range(2):
        assert drain(gov, now) == ["x"]
        assert gov.on_cooldown(now, 100) is not None
        now += 1
    assert drain(gov, now) == ["x"]
    assert gov.on_cooldown(now, 100) is None
    assert gov.depth() == 0 and not gov.outstanding


def test_replies_to_people_go_before_other_output() -> None:
    gov = Governor()
    gov.set_pace(4, 1.0, 4.0)
    for n in range(3):
        gov.add(say(n, f"notice {n}", priority=PRIORITY_OTHER), 0.0)
    gov.add(say(10, "alice: the answer"), 0.0)
    gov.add_command("/afk", expires_at=100.0)
    assert drain(gov, 0.0) == ["alice: the answer", "notice 0", "notice 1"]
    gov.add(say(11, "bob: another answer"), 0.5)
    assert drain(gov, 1.05) == ["bob: another answer"]
    assert drain(gov, 2.1) == ["notice 2"]
    assert drain(gov, 3.2) == ["/afk"]
    assert gov.depth() == 0
    assert [p.text for p in gov.outstanding][-1] == "notice 2"  # /afk is never echoed


def test_parts_of_one_reply_stay_in_order_and_echoes_confirm_the_whole_say() -> None:
    gov = Governor(limit=100)
    assert gov.add(say(1, "word " * 30), now=0.0) == 2
    assert len(drain(gov, 0.0)) == 2
    assert gov.on_echo(private=False) is None
    outcome = gov.on_echo(private=False)
    assert outcome is not None and outcome.ok and outcome.parts == 2 and outcome.say_id == "s1"


def test_muted_stops_chat_but_not_pms_and_the_ttl_drops_what_waited_too_long() -> None:
    gov = Governor()
    gov.muted = True
    gov.add(say(1, "public", expires_at=5.0), 0.0)
    gov.add(say(2, "private", pm_to="bob"), 0.0)
    assert drain(gov, 0.0) == ["private"]
    assert gov.delay(1.0) == math.inf  # nothing sendable while muted
    assert gov.expire(4.0) == []
    (expired,) = gov.expire(5.0)
    assert (expired.say_id, expired.ok, expired.reason, expired.unsent) == ("s1", False,
                                                                           "expired", 1)
    gov.add(say(3, "after unmute"), 6.0)
    assert drain(gov, 6.0) == []
    gov.muted = False
    assert drain(gov, 6.0) == ["after unmute"]


def test_errors_fail_only_their_kind_and_echo_timeout_fails_the_say() -> None:
    gov = Governor(echo_timeout=5.0)
    gov.add(say(1, "public"), 0.0)
    gov.add(say(2, "private", pm_to="bob"), 0.0)
    drain(gov, 0.0)
    outcome = gov.on_error(private=True, reason="pm failed")
    assert outcome is not None and not outcome.ok and outcome.say_id == "s2"
    assert gov.expire(4.0) == []
    (late,) = gov.expire(5.5)
    assert (late.say_id, late.reason) == ("s1", "no echo")


def test_disconnect_requeues_unconfirmed_on_a_fresh_limiter_and_a_replay_confirms() -> None:
    gov = Governor()
    gov.add(say(1, "a"), 0.0)
    gov.add(say(2, "b"), 0.0)
    assert gov.add(say(1, "a"), 0.0) == 0  # duplicates are ignored
    for n in range(3, 30):
        gov.add(say(n, f"m{n}"), 0.0)
    assert len(drain(gov, 0.0)) == 19
    gov.on_disconnect()
    # "a" did reach the server before the socket died: the rejoin replay shows it
    confirmed = gov.on_replayed_echo("a", 0.0)
    assert confirmed is not None and confirmed.ok and confirmed.say_id == "s1"
    assert gov.on_replayed_echo("never sent", 0.0) is None
    sent = drain(gov, 0.5)
    assert sent[0] == "b" and len(sent) == 19  # a fresh burst on the new socket


def test_message_length_applies_to_new_says() -> None:
    gov = Governor(limit=320)
    gov.set_limit(100)
    assert gov.add(say(1, "word " * 50), 0.0) == 3
    assert all(len(t) <= 100 for t in drain(gov, 0.0))


def test_keepalive_commands_can_be_cancelled_and_expire_silently() -> None:
    gov = Governor()
    gov.add_command("/afk", expires_at=10.0)
    assert gov.cancel_commands("/afk") == 1 and gov.depth() == 0
    gov.muted = True  # chat.js refuses a muted user's commands too: /afk waits, then expires
    gov.add_command("/afk", expires_at=10.0)
    assert gov.expire(11.0) == [] and gov.depth() == 0
