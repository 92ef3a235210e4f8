"""The caller pool under real supervisord: drain on SIGTERM and `rosey scale` under load.

A stopped caller finishes the calls it has (its reply is posted once, the fake provider
is not asked twice), the router routes new work around it, and scaling changes only the
members that must change.  Each "it did not happen" check is paired with the count of
what did happen.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import pytest

from bench.util import rss_mib
from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests.e2e.harness import Rosey, bot_lines, deployed, expect_lines

USERS = [f"user{n}" for n in range(8)]


def caller_pids(rosey: Rosey) -> dict[int, int]:
    status = rosey.cli("status").stdout
    return {int(n): int(pid) for n, pid in
            re.findall(r"^caller:caller-(\d+)\s+RUNNING\s+pid (\d+)", status, re.MULTILINE)}


def supervisorctl(rosey: Rosey, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c",
                           str(rosey.run_dir / "supervisord.conf"), *args],
                          capture_output=True, text=True, timeout=60)



def sd_targets(rosey: Rosey) -> list[str]:
    try:
        groups = json.loads((rosey.run_dir / "callers.json").read_text())
    except (OSError, ValueError):
        return []
    return sorted(t for group in groups for t in group["targets"])


def busy(rosey: Rosey, index: int) -> float:
    return rosey.metric(f"caller-{index}", "rosey_caller_slots_busy")


def answered(rosey: Rosey, index: int) -> float:
    return rosey.metric(f"caller-{index}", "rosey_llm_requests_total",
                        {"provider": "ollama", "model": "m", "outcome": "ok"})


def deployment(cytube: FakeCytube, llm: FakeLLM, **callers: int) -> Rosey:
    return Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                          "llm_cooldown": 0, "response_timeout": 20},
                 callers={"heartbeat_interval": 0.2, "liveness": 1.0, **callers},
                 conn={"message_length": 320})


@pytest.mark.timeout(120)
async def test_sigterm_drains_the_call_in_flight_and_new_work_goes_elsewhere(
        cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.delay = 2.0
        rosey = deployment(cytube, llm, count=2, max=2)
        async with deployed(rosey, cytube):
            await cytube.wait_for(lambda: len(caller_pids(rosey)) == 2, timeout=15)
            await cytube.say_as("alice", "rosey, a slow one")
            await cytube.wait_for(lambda: llm.calls == 1, timeout=10)
            # docs/DECISIONS.md: a caller (here with the Ollama SDK, mid-call) stays <= 80 MiB
            rss = {n: rss_mib(pid) for n, pid in caller_pids(rosey).items()}
            assert all(0 < mib <= 80 for mib in rss.values()), rss
            draining = int(llm.request_headers[0]["x-rosey-caller"].split("-")[1])
            other = 1 - draining
            assert busy(rosey, draining) == 1
            stop = asyncio.create_task(asyncio.to_thread(
                supervisorctl, rosey, "stop", f"caller:caller-{draining}"))
            await asyncio.sleep(0.5)  # SIGTERM delivered; the caller announced slots=0
            assert not stop.done()  # still finishing alice's call
            await cytube.say_as("bob", "rosey, are you there?")
            done = await asyncio.wait_for(stop, 30)
            assert "stopped" in done.stdout, done.stdout + done.stderr
            await expect_lines(cytube, rosey, 2, timeout=15)
            assert sorted(bot_lines(cytube)) == [
                "alice: reply to: alice: rosey, a slow one",
                "bob: reply to: bob: rosey, are you there?"]
            assert llm.calls == 2  # alice's call was finished, not redone elsewhere
            # bob's went to the caller still running
            assert llm.request_headers[1]["x-rosey-caller"] == f"caller-{other}"
            assert answered(rosey, other) == 1
            assert rosey.metric("router", "rosey_router_requests_total",
                                {"outcome": "requeued"}) == 0
            assert rosey.metric("router", "rosey_router_replies_total",
                                {"kind": "fallback"}) == 0
            assert caller_pids(rosey).keys() == {other}


@pytest.mark.timeout(180)
async def test_scale_2_to_4_to_1_under_load_loses_and_doubles_nothing(
        cytube: FakeCytube) -> None:
    for name in USERS:
        cytube.add_virtual_user(name)
    async with FakeLLM("ollama", models=["m"]) as llm:
        llm.delay = 4.0
        rosey = deployment(cytube, llm, count=2, max=4, slots=2)
        async with deployed(rosey, cytube):
            await cytube.wait_for(lambda: len(caller_pids(rosey)) == 2, timeout=15)
            first = caller_pids(rosey)
            for name in USERS[:2]:
                await cytube.say_as(name, f"rosey, question from {name}")
            await cytube.wait_for(lambda: llm.calls == 2, timeout=10)

            up = await asyncio.to_thread(rosey.cli, "scale", "4")
            assert up.returncode == 0, up.stdout + up.stderr
            assert "started caller-2, caller-3" in up.stdout
            pids = caller_pids(rosey)
            assert sorted(pids) == [0, 1, 2, 3]
            assert {n: pids[n] for n in (0, 1)} == first  # the running ones untouched
            base = rosey.ports["caller_base"]
            await cytube.wait_for(lambda: sd_targets(rosey) == sorted(
                f"127.0.0.1:{base + n}" for n in range(4)), timeout=5)
            await cytube.wait_for(lambda: rosey.metric(
                "router", "rosey_router_callers_alive") == 4, timeout=10)
            for name in USERS[2:]:
                await cytube.say_as(name, f"rosey, question from {name}")
            await cytube.wait_for(lambda: llm.calls == 8, timeout=10)
            # every member about to be stopped has a call in flight at the fake provider
            callers = sorted(h["x-rosey-caller"] for h in llm.request_headers)
            assert callers == [f"caller-{n}" for n in (0, 0, 1, 1, 2, 2, 3, 3)]
            assert [busy(rosey, n) for n in (1, 2, 3)] == [2, 2, 2]
            assert bot_lines(cytube) == []  # nothing answered yet: all 8 are in flight

            down = await asyncio.to_thread(rosey.cli, "scale", "1")
            assert down.returncode == 0, down.stdout + down.stderr
            assert "stopped caller-1, caller-2, caller-3" in down.stdout
            assert caller_pids(rosey) == {0: first[0]}
            await expect_lines(cytube, rosey, 8, timeout=20)
            expected = [f"{n}: reply to: {n}: rosey, question from {n}" for n in USERS]
            assert sorted(bot_lines(cytube)) == sorted(expected)  # each once, none lost
            assert llm.calls == 8  # no call redone
            for outcome, count in (("requeued", 0), ("shed", 0), ("answered", 8)):
                assert rosey.metric("router", "rosey_router_requests_total",
                                    {"outcome": outcome}) == count, outcome

            # the one left answers new work; the size and the scrape targets persisted
            await cytube.say_as("alice", "rosey, still there?")
            await expect_lines(cytube, rosey, 9)
            assert json.loads((rosey.run_dir / "callers.scale").read_text())["count"] == 1
            # the scrape targets follow (written by supervisord's event listener)
            await cytube.wait_for(lambda: sd_targets(rosey) == [
                f"127.0.0.1:{rosey.ports['caller_base']}"], timeout=5)
