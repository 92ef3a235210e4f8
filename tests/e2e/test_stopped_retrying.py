"""A stop conn cannot retry out of is loud, under real supervisord: the foreground log says
the fix in ``rosey doctor``'s words, ``rosey status`` exits 3 naming the reason, and a
healthy deployment beside it exits 0."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from fakes.cytube import FakeCytube
from rosey.cli import exit_codes
from rosey.conn import refusals
from tests.e2e.harness import BOT, Rosey, deployed

GUEST = "RoseyBot"  # the example's old default: here, as on many sites, someone registered it


async def status_when(rosey: Rosey, code: int, timeout: float = 15.0
                      ) -> subprocess.CompletedProcess[str]:
    """``rosey status`` once it exits ``code`` (processes still starting say 1 meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        done = await asyncio.to_thread(rosey.cli, "status")
        if done.returncode == code or loop.time() > deadline:
            assert done.returncode == code, (done.returncode, done.stdout, done.stderr,
                                             rosey.logs()[-4000:])
            return done
        await asyncio.sleep(0.5)


async def wait_log(rosey: Rosey, text: str, timeout: float = 30.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while text not in rosey.logs():
        if loop.time() > deadline:
            raise AssertionError(f"{text!r} never logged:\n{rosey.logs()[-5000:]}")
        await asyncio.sleep(0.2)
    return next(line for line in rosey.logs().splitlines() if text in line)


@pytest.mark.timeout(90)
async def test_a_registered_guest_name_stops_loudly_and_a_healthy_bot_does_not(
        cytube: FakeCytube) -> None:
    assert GUEST.lower() == BOT  # the fake has an account of that name (rank 2)
    llm = {"provider": "ollama", "model": "m", "ollama_host": "http://127.0.0.1:9"}
    healthy = Rosey(cytube, llm)
    guest = Rosey(cytube, llm, user=[GUEST, ""])
    async with deployed(guest), deployed(healthy, cytube):
        ok = await status_when(healthy, 0)
        assert "connected: yes" in ok.stdout and ok.stderr == "", (ok.stdout, ok.stderr)

        # conn's own line in the foreground output (the router repeats it, in any order)
        line = await wait_log(guest, "conn ERROR rosey.conn: conn stopped retrying in "
                                     f"{cytube.channel} (registered_name): ")
        names = refusals.Names(name=GUEST, domain=cytube.url, channel=cytube.channel)
        assert "login as 'RoseyBot' refused: That username is registered." in line
        assert f"— fix: {refusals.fix('registered_name', names)}" in line
        stopped = await status_when(guest, exit_codes.CONN_STOPPED)
        assert "connected: NO (stopped retrying: registered_name)" in stopped.stdout
        assert (f"rosey: conn stopped retrying in {cytube.channel} (registered_name): the guest "
                f"name {GUEST} is a "
                f"registered account on {cytube.url} — fix: "
                f"{refusals.fix('registered_name', names)}") in stopped.stderr
        for program in ("conn", "router", "events"):  # up and idle, not crash-looping
            assert any(row.startswith(program) and "RUNNING" in row
                       for row in stopped.stdout.splitlines()), stopped.stdout
        assert guest.metric("conn", "rosey_conn_fatal", {"reason": "registered_name"}) == 1
        assert healthy.metric("conn", "rosey_conn_fatal", {"reason": "registered_name"}) == 0
        logins = [d for _, event, d in cytube.frames_from_clients if event == "login"]
        assert logins.count({"name": GUEST}) == 1, logins  # tried once, then stopped
        codes = await asyncio.gather(guest.stop(), healthy.stop())
        assert list(codes) == [0, 0], (codes, guest.logs()[-3000:], healthy.logs()[-3000:])
        down = healthy.cli("status")  # and once stopped: not running
        assert down.returncode == exit_codes.NOT_RUNNING and "rosey: not running" in down.stderr
