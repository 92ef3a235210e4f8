"""The router over real ZeroMQ with real caller processes and a fake provider; the test
plays the conn process.  Crashes lose no accepted mention and never double a reply."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator

import pytest

from fakes.llm import FakeLLM
from tests.e2e.harness import Rosey
from tests.integration.router_rig import RouterRig


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM("ollama", models=["m"]) as fake:
        yield fake


def rig_for(fake: FakeLLM, llm: dict[str, object] | None = None,
            **overrides: object) -> RouterRig:
    return RouterRig({"provider": "ollama", "model": "m", "ollama_host": fake.url, **(llm or {})},
                     **overrides)


async def provider_calls(llm: FakeLLM, count: int, timeout: float = 5.0) -> None:
    """Wait until the fake provider has received ``count`` calls (they are in flight)."""
    deadline = time.monotonic() + timeout
    while llm.calls < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"the provider got {llm.calls} calls in {timeout} s, "
                                 f"wanted {count}")
        await asyncio.sleep(0.02)


async def journal_drained(rig: RouterRig, timeout: float = 5.0) -> None:
    """Wait until the router has no reply left unacknowledged (its journal is closed)."""
    port = rig.config["metrics"]["router_port"]
    deadline = time.monotonic() + timeout
    while True:
        try:
            left = Rosey.metric_at(port, "rosey_router_journal_open")
        except OSError:
            left = -1
        if left == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"journal still open ({left}) after {timeout} s; logs:\n"
                                 f"{rig.logs()}")
        await asyncio.sleep(0.05)


async def start(rig: RouterRig, callers: int = 2, announce: bool = True) -> None:
    rig.start("router")
    for index in range(callers):
        rig.start(f"caller-{index}")
    await rig.connect(announce)
    await rig.wait_callers(callers)


@pytest.mark.timeout(60)
async def test_killed_caller_mid_request_gives_exactly_one_reply(llm: FakeLLM) -> None:
    llm.delay = 1.0
    rig = rig_for(llm, llm={"response_timeout": 10})
    try:
        await start(rig)
        await rig.chat("alice", "rosey, think slowly")
        await provider_calls(llm, 1)
        for name in ("caller-0", "caller-1"):  # whichever had it
            rig.kill(name)
        rig.start("caller-0")
        say = await rig.next_say(timeout=10)
        assert say.text == "alice: reply to: alice: rosey, think slowly"
        await rig.no_say(1.5)  # and no second one
        assert llm.calls == 2  # the provider saw the retried call
    finally:
        rig.close()


@pytest.mark.timeout(60)
async def test_stalled_callers_shed_at_deadline_while_commands_answer(llm: FakeLLM) -> None:
    rig = rig_for(llm, llm={"response_timeout": 2, "fallback_response": "Sorry!"})
    try:
        await start(rig)
        for name in ("caller-0", "caller-1"):
            rig.procs[name].send_signal(signal.SIGSTOP)
        started = time.monotonic()
        await rig.chat("alice", "rosey, anyone there?")
        await rig.pm("Mod", "!status")
        status = await rig.next_say(timeout=2)
        assert status.pm_to == "Mod" and status.text.startswith("llm on")
        assert time.monotonic() - started < 1.0
        fallback = await rig.next_say(timeout=5)
        elapsed = time.monotonic() - started
        assert fallback.text == "alice: Sorry!"
        assert 1.9 <= elapsed <= 3.5, elapsed
        assert llm.calls == 0
    finally:
        for name in ("caller-0", "caller-1"):
            rig.procs[name].send_signal(signal.SIGCONT)
        rig.close()


@pytest.mark.timeout(60)
async def test_killed_router_resumes_accepted_mentions_once(llm: FakeLLM) -> None:
    llm.delay = 1.0
    rig = rig_for(llm, llm={"response_timeout": 15})
    try:
        await start(rig, announce=False)
        await rig.chat("alice", "rosey, first question")
        await rig.chat("bob", "rosey, second question")
        await provider_calls(llm, 2)
        rig.kill("router")
        rig.start("router")
        # The stand-in says nothing to the new router (harsher than the real conn, which
        # re-announces itself): its DEALER reconnects by itself, the new router's first
        # offers may be refused meanwhile (ROUTER_MANDATORY), and the re-offers get through.
        texts = sorted([(await rig.next_say(timeout=10)).text for _ in range(2)])
        assert texts == ["alice: reply to: alice: rosey, first question",
                         "bob: reply to: bob: rosey, second question"]
        await rig.no_say(2.0)
        await journal_drained(rig)
    finally:
        rig.close()


@pytest.mark.timeout(60)
async def test_killed_router_reoffers_unacknowledged_replies_until_acked_once(
        llm: FakeLLM) -> None:
    rig = rig_for(llm)
    try:
        await start(rig, announce=False)
        await rig.chat("alice", "rosey, one")
        await rig.chat("bob", "rosey, two")
        # conn has them and is "posting": no Delivered yet when the router dies.
        posted = sorted([(await rig.next_say(ack=False)).text for _ in range(2)])
        assert posted == ["alice: reply to: alice: rosey, one", "bob: reply to: bob: rosey, two"]
        await asyncio.sleep(0.3)  # the journal's 'replied' rows commit
        offers = rig.offers
        rig.kill("router")
        rig.start("router")
        await rig.no_say(3.0)  # re-offered (no ConnState needed), never posted twice
        assert rig.offers >= offers + 2, (offers, rig.offers)
        await rig.ack_all()  # the echoes came: acknowledged once, to the new router
        await journal_drained(rig)
        await rig.no_say(0.5)  # offers already on the wire when the acks arrived
        offers = rig.offers
        await rig.no_say(2.5)
        assert rig.offers == offers  # acknowledged: no more re-offers
        assert len(rig.says) == 2 and llm.calls == 2
        await rig.wait_callers(2)
        await rig.chat("alice", "rosey, three")  # and the new router answers new mentions
        assert (await rig.next_say()).text == "alice: reply to: alice: rosey, three"
    finally:
        rig.close()


@pytest.mark.timeout(60)
async def test_restarted_router_keeps_history_limits_and_toggles(llm: FakeLLM) -> None:
    rig = rig_for(llm, llm={"llm_cooldown": 60})
    try:
        await start(rig)
        await rig.chat("alice", "rosey, remember the word banana")
        first = await rig.next_say()
        assert first.text.startswith("alice: reply to:")
        await rig.pm("Mod", "!persona nobody")  # refused: unknown persona
        assert "usage" in (await rig.next_say()).text
        await rig.pm("Mod", "!llm off")
        assert "disabled" in (await rig.next_say()).text
        await asyncio.sleep(0.3)  # let the writer thread commit
        rig.kill("router", signal.SIGTERM)
        rig.start("router")
        await rig.wait_callers(2)
        await rig.chat("bob", "rosey, are you on?")
        await rig.no_say(1.0)  # toggle survived
        await rig.pm("Mod", "!llm on")
        assert "enabled" in (await rig.next_say()).text
        await rig.chat("alice", "rosey, what was the word?")
        await rig.no_say(1.0)  # alice's 60 s cooldown survived
        await rig.chat("bob", "rosey, now?")
        answer = await rig.next_say()
        assert answer.text == "bob: reply to: bob: rosey, now?"
        calls = llm.calls
        assert calls == 2
        # History survived: alice's next call (Mod is exempt from cooldowns) carries it.
        await rig.pm("Mod", "!cooldown 0")
        await rig.next_say()
        await rig.chat("alice", "rosey, the word?")
        await rig.next_say()
        messages = [(m["role"], m["content"]) for m in llm.requests[-1]["messages"][1:]]
        assert messages[:2] == [
            ("user", "alice: rosey, remember the word banana"),
            ("assistant", "reply to: alice: rosey, remember the word banana")]
    finally:
        rig.close()


@pytest.mark.timeout(60)
async def test_sighup_rereads_the_config_and_keeps_the_channels_state(llm: FakeLLM) -> None:
    rig = rig_for(llm, llm={"llm_cooldown": 60})
    try:
        await start(rig)
        await rig.chat("alice", "rosey, one")
        assert (await rig.next_say()).text == "alice: reply to: alice: rosey, one"
        await rig.chat("bob", "captain, one")
        await rig.no_say(0.5)  # not a trigger yet
        rig.config["llm"]["llm_triggers"] = ["rosey", "captain"]
        rig.config_path.write_text(json.dumps(rig.config))
        rig.kill_signal("router", signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "config applied" not in (rig.home / "router.log").read_text():
            assert time.monotonic() < deadline, f"SIGHUP not applied; logs:\n{rig.logs()}"
            await asyncio.sleep(0.05)
        await rig.chat("bob", "captain, two")
        assert (await rig.next_say()).text == "bob: reply to: bob: captain, two"
        assert rig.procs["router"].poll() is None  # SIGHUP did not end it
        await rig.chat("alice", "rosey, two")
        await rig.no_say(1.0)  # alice's 60 s cooldown survived the reload
    finally:
        rig.close()
