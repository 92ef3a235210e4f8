"""The outbound governor: pacing, echo FIFO, cooldown re-sends, errors, expiry (virtual clock)."""

from __future__ import annotations

import pytest

from rosey.cytube.governor import Governor
from rosey.protocol import Say


def say(n: int, text: str = "hello", pm_to: str = "", expires_at: float = 1000.0) -> Say:
    return Say(id=f"s{n}", channel="c", text=text, pm_to=pm_to, expires_at=expires_at)


def drain(gov: Governor, now: float) -> list[str]:
    sent = []
    while (part := gov.next_part(now)) is not None:
        sent.append(part.text)
    return sent


def test_mirrors_the_server_flood_limiter_with_margin() -> None:
    gov = Governor()  # the server allows 20 at once, then one per 100 ms
    for n in range(30):
        gov.add(say(n, f"m{n}"), now=0.0)
    assert len(drain(gov, 0.0)) == 18  # two kept in hand for clock skew
    assert gov.delay(0.0) == pytest.approx(0.115)
    assert drain(gov, 0.1) == []
    assert drain(gov, 0.115) == ["m18"]
    assert drain(gov, 0.2) == []
    assert drain(gov, 0.23) == ["m19"]
    # The server resets its count after 2 s of quiet (burst/sustained); we wait 0.3 s more.
    assert drain(gov, 2.5) == ["m20"]  # 2.27 s of quiet: no reset yet, one interval passed
    assert len(drain(gov, 4.81)) == 9  # 2.31 s of quiet: a fresh burst
    assert gov.delay(4.81) == float("inf")


def test_antiflood_pace_for_low_ranks() -> None:
    gov = Governor()
    gov.set_pace(4, 1.0, 4.0)
    for n in range(5):
        gov.add(say(n, f"m{n}"), now=0.0)
    assert drain(gov, 0.0) == ["m0", "m1"]
    assert drain(gov, 1.0) == []
    assert drain(gov, 1.15) == ["m2"]
    assert drain(gov, 4.5) == ["m3"]  # 3.35 s quiet < 4 + 0.3: still one per interval
    assert drain(gov, 8.9) == ["m4"]


def test_echo_confirms_in_order_and_reports_delivery_when_all_parts_are_in() -> None:
    gov = Governor(limit=100)
    gov.add(say(1, "word " * 30), now=0.0)  # two parts
    assert len(drain(gov, 0.0)) == 2
    assert gov.on_echo(private=False) is None
    outcome = gov.on_echo(private=False)
    assert outcome is not None and outcome.ok and outcome.parts == 2 and outcome.say_id == "s1"


def test_cooldown_resends_the_dropped_message_first() -> None:
    gov = Governor()
    gov.add(say(1, "one"), 0.0)
    gov.add(say(2, "two"), 0.0)
    assert drain(gov, 0.0) == ["one", "two"]
    assert gov.on_echo(False) is not None  # "one" arrived
    resent = gov.on_cooldown()  # "two" was dropped by the server
    assert resent is not None and resent.text == "two"
    assert gov.next_part(0.0) is None  # the server is past its burst: wait an interval
    assert drain(gov, 0.115) == ["two"]
    outcome = gov.on_echo(False)
    assert outcome is not None and outcome.ok and outcome.say_id == "s2"


def test_pm_error_fails_only_the_pm() -> None:
    gov = Governor()
    gov.add(say(1, "public"), 0.0)
    gov.add(say(2, "private", pm_to="bob"), 0.0)
    drain(gov, 0.0)
    outcome = gov.on_error(private=True, reason="pm failed")
    assert outcome is not None and not outcome.ok and outcome.say_id == "s2"
    ok = gov.on_echo(False)
    assert ok is not None and ok.ok and ok.say_id == "s1"


def test_expiry_and_echo_timeout() -> None:
    gov = Governor(echo_timeout=5.0)
    gov.add(say(1, "late", expires_at=10.0), 0.0)
    gov.add(say(2, "sent"), 0.0)
    gov.set_pace(1, 0.01)  # only one may go now (the margin still lets one through)
    assert drain(gov, 0.0) == ["late"]
    assert gov.expire(4.0) == []
    outcomes = {o.say_id: o.reason for o in gov.expire(11.0)}
    assert outcomes == {"s1": "no echo"} or outcomes == {"s1": "expired"}
    assert gov.depth() == 1


def test_disconnect_requeues_unconfirmed_and_duplicates_are_ignored() -> None:
    gov = Governor()
    gov.add(say(1, "a"), 0.0)
    assert gov.add(say(1, "a"), 0.0) == 0
    drain(gov, 0.0)
    gov.on_disconnect()
    assert drain(gov, 5.0) == ["a"]
    outcome = gov.on_echo(False)
    assert outcome is not None and outcome.ok
