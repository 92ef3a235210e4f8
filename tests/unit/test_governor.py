"""The outbound governor: pacing, echo FIFO, cooldown re-sends, errors, expiry (virtual clock)."""

from __future__ import annotations

from rosey.cytube.governor import Governor
from rosey.protocol import Say


def say(n: int, text: str = "hello", pm_to: str = "", expires_at: float = 1000.0) -> Say:
    return Say(id=f"s{n}", channel="c", text=text, pm_to=pm_to, expires_at=expires_at)


def drain(gov: Governor, now: float) -> list[str]:
    sent = []
    while (part := gov.next_part(now)) is not None:
        sent.append(part.text)
    return sent


def test_paces_under_the_server_flood_limit() -> None:
    gov = Governor(burst=15, rate=8.0)
    for n in range(30):
        gov.add(say(n, f"m{n}"), now=0.0)
    assert len(drain(gov, 0.0)) == 15  # never the 20 the server allows at once
    assert gov.delay(0.0) > 0
    assert len(drain(gov, 1.0)) == 8
    assert len(drain(gov, 10.0)) == 7


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
    assert gov.next_part(0.0) is None  # wait for the refill first
    assert drain(gov, 1.0) == ["two"]
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
    gov.set_pace(1, 0.01)  # only one may go now
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
