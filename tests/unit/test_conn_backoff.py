"""Reconnect policy on a virtual clock: the per-IP bucket, repeated failures, kicks, guests,
persistence across restarts, and the fatal classification of server answers."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rosey.conn import attempts
from rosey.conn.backoff import (
    ReconnectPolicy,
    classify_connect_error,
    classify_kick,
    classify_login_error,
)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, **kw: object) -> ReconnectPolicy:
    return ReconnectPolicy(clock=clock, rng=random.Random(3), **kw)  # type: ignore[arg-type]


def run_failures(p: ReconnectPolicy, clock: Clock, n: int, cause: str = "failure"
                 ) -> list[float]:
    """n attempts that all fail at once; returns the delay planned before each next one."""
    delays = []
    for _ in range(n):
        p.record_attempt()
        delay = p.next_delay(cause)  # type: ignore[arg-type]
        delays.append(delay)
        clock.now += delay
    return delays


def test_repeated_connect_failures_back_off_to_at_least_10_s() -> None:
    clock = Clock()
    p = policy(clock, min_delay=0.5, max_delay=60.0)
    delays = run_failures(p, clock, 12)
    assert delays[0] < 1.0  # the first retry is quick
    assert all(d >= 10.0 for d in delays[3:])  # "a few quick failures", then >= 10 s
    assert max(delays) <= 60.0  # reconnect_max, jitter included
    # never shorter again while it keeps failing (up to the upward-only jitter at the cap)
    assert all(b >= a / 1.25 for a, b in itertools.pairwise(delays))
    # and the server's per-IP bucket (5, then 1 per 10 s) never runs dry
    assert bucket_never_empty([t for t in p.log.attempts])


def bucket_never_empty(attempts: list[float]) -> bool:
    tokens, last = 5.0, None
    for t in attempts:
        if last is not None:
            tokens = min(5.0, tokens + (t - last) / 10.0)
        if tokens < 1:
            return False
        tokens -= 1
        last = t
    return True


def test_the_bucket_waits_for_a_token_even_after_healthy_sessions() -> None:
    clock = Clock()
    p = policy(clock, min_delay=0.1)
    for _ in range(5):  # five sessions that joined and then dropped, one second apart
        p.record_attempt()
        p.record_joined()
        clock.now += 1.0
    assert p.bucket_wait(clock.now) == pytest.approx(10.0 - 5.0 + 0.5)
    delay = p.next_delay("disconnect")
    assert delay >= 5.5
    clock.now += delay
    assert p.bucket_wait(clock.now) == 0.0


def test_a_healthy_session_that_drops_retries_quickly() -> None:
    clock = Clock()
    p = policy(clock, min_delay=1.0)
    assert p.next_delay("start") == 0.0
    p.record_attempt()
    p.record_joined()
    clock.now += 3600
    assert 1.0 <= p.next_delay("disconnect") <= 1.25  # a server restart: back in ~1 s


def test_kicks_back_off_longer_when_repeated_then_forget() -> None:
    clock = Clock()
    p = policy(clock, kick_delay=15.0)
    waits = []
    for _ in range(6):
        p.record_attempt()
        p.record_joined()
        p.record_kick()
        waits.append(p.next_delay("kick"))
        clock.now += waits[-1] + 60
    assert 15.0 <= waits[0] <= 15.0 * 1.25
    assert all(b > a for a, b in itertools.pairwise(waits[:5]))
    assert waits[-1] <= 600  # KICK_MAX, jitter included
    clock.now += 2 * 3600  # an hour without kicks: back to the first step
    p.record_kick()
    assert p.next_delay("kick") <= 15.0 * 1.25


def test_guest_logins_wait_60_s_per_ip() -> None:
    clock = Clock()
    p = policy(clock, guest=True, min_delay=0.5)
    p.record_attempt()
    p.record_guest_login()
    p.record_joined()
    clock.now += 2
    assert p.next_delay("disconnect") == pytest.approx(59.0)
    registered = policy(clock, guest=False, min_delay=0.5)
    registered.log = p.log
    assert registered.next_delay("disconnect") < 1.0


def test_supervisord_restarts_cannot_bypass_the_backoff(tmp_path: Path) -> None:
    clock = Clock()
    state = tmp_path / "conn-testchan.json"
    first = policy(clock, log=attempts.load(state), min_delay=1.0)
    for _ in range(6):  # a crash loop: every process dies before joining
        restarted = policy(clock, log=attempts.load(state), min_delay=1.0)
        delay = restarted.next_delay("start")
        clock.now += delay
        restarted.record_attempt()
        attempts.save(state, restarted.log)
    assert delay >= 10.0  # the sixth start waits like the sixth failure in one process
    assert first.log.failures == 0  # (a stale object is not what decides)
    assert attempts.load(state).failures == 6
    state.write_text("{not json")
    assert attempts.load(state).failures == 0  # unreadable: start afresh


class MaxRandom(random.Random):
    """The largest jitter every time: the case that went past the cap."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_jitter_never_pushes_a_delay_past_reconnect_max() -> None:
    clock = Clock()
    p = ReconnectPolicy(clock=clock, rng=MaxRandom(), min_delay=1.0, max_delay=60.0)
    delays = run_failures(p, clock, 12)
    assert delays[6] == 60.0  # 1, 2, 4, … 64 > 60: at the cap, not 60 * 1.25 = 75
    assert max(delays) == 60.0
    assert delays[:3] == [1.25, 2.5, 5.0]  # below the cap the jitter still spreads


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), failures=st.integers(1, 40),
       cause=st.sampled_from(["start", "failure", "disconnect", "rate_limited"]),
       max_delay=st.floats(10.5, 600), min_delay=st.floats(0.05, 10),
       spread=st.floats(0, 120))
def test_no_seed_takes_a_reconnect_past_its_cap(seed: int, failures: int, cause: str,
                                                 max_delay: float, min_delay: float,
                                                 spread: float) -> None:
    clock = Clock()
    p = ReconnectPolicy(clock=clock, rng=random.Random(seed), min_delay=min_delay,
                        max_delay=max_delay)
    for _ in range(failures):  # attempts `spread` s apart: the bucket may or may not be dry
        p.record_attempt()
        clock.now += spread / failures
    delay = p.next_delay(cause)  # type: ignore[arg-type]
    assert delay <= max_delay
    assert delay >= p.bucket_wait(clock.now)  # and the server's bucket still holds


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kicks=st.integers(1, 12))
def test_no_seed_takes_a_kick_backoff_past_ten_minutes(seed: int, kicks: int) -> None:
    clock = Clock()
    p = ReconnectPolicy(clock=clock, rng=random.Random(seed), kick_delay=15.0)
    for _ in range(kicks):
        p.record_kick()
        clock.now += 1
    assert 15.0 <= p.next_delay("kick") <= 600.0


def test_rate_limited_waits_a_refill() -> None:
    clock = Clock()
    p = policy(clock)
    assert 10.0 <= p.next_delay("rate_limited") <= 12.5


@pytest.mark.parametrize(("reason", "verdict"), [
    ("Duplicate login", "duplicate"),
    ("testing the kick", "kick"),
    ("", "kick"),
    ("You're banned!", "fatal"),
    ("You are banned from this channel.", "fatal"),
    ("Your IP address is banned from this channel.", "fatal"),
    ("Your username is banned from this channel.", "fatal"),
    ("Invalid channel name", "fatal"),
    ("Too many connections from your IP address", "rate_limited"),
    ("Rate limit exceeded", "rate_limited"),
])
def test_kick_classification(reason: str, verdict: str) -> None:
    assert classify_kick(reason) == verdict


def test_connect_and_login_classification() -> None:
    assert classify_connect_error("You are banned from the server") == "fatal"
    assert classify_connect_error(
        "One or more namespaces failed to connect: Rate limit exceeded") == "rate_limited"
    assert classify_connect_error("Connection refused") == "retry"
    for error in ("Invalid username/password combination", "User does not exist",
                  "That username is registered.", "That username is reserved.",
                  "Invalid username.  Usernames must be 1-20 characters long"):
        assert classify_login_error(error) == ("fatal", 0.0)
    assert classify_login_error(
        "Guest logins are restricted to one per IP address per 60 seconds.") == ("retry", 61.0)
    assert classify_login_error("That name is already in use on this channel.") == (
        "retry", 30.0)
