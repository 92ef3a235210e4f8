"""The server's refusals: one text per reason, shared by doctor, conn, status and the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rosey import metrics
from rosey.conn import refusals
from tests.transcript import frames

ROOT = Path(__file__).resolve().parents[2]
NAMES = refusals.Names(name="RoseyBot", domain="https://cytu.be", channel="testchan")


def test_every_recorded_login_error_has_a_reason_and_a_fix() -> None:
    errors = {f["data"]["error"] for f in frames(direction="in")
              if f["event"] == "login" and isinstance(f["data"], dict)
              and not f["data"].get("success")}
    assert len(errors) >= 6
    got = {error: refusals.login_reason(error) for error in errors}
    assert "login_refused" not in got.values(), got  # every recorded one is known
    assert got["That username is registered."] == "registered_name"
    assert got["Invalid username/password combination"] == "bad_password"
    assert not refusals.is_fatal(got["That name is already in use on this channel."])
    assert not refusals.is_fatal(
        got["Guest logins are restricted to one per IP address per 60 seconds."])
    for reason in got.values():
        assert refusals.fix(reason, NAMES) and refusals.what(reason, NAMES)


@pytest.mark.parametrize("reason", refusals.FATAL_REASONS)
def test_each_stop_reads_the_same_in_the_log_the_metric_and_the_runbook(reason: str) -> None:
    line = refusals.stopped_line(reason, "what the server said", NAMES)  # type: ignore[arg-type]
    assert line.startswith(f"conn stopped retrying in {NAMES.channel} ({reason}): what the "
                           "server said — fix: ")
    assert "{" not in line  # every placeholder filled
    assert reason in metrics.FATAL._documentation
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    assert re.search(rf"^\| `{reason}` \|", runbook, re.M), reason


def test_classifying_connect_errors_and_kicks() -> None:
    assert refusals.connect_reason("You are banned from the server") == "server_ban"
    assert refusals.connect_reason("Rate limit exceeded") == "rate_limited"
    assert refusals.connect_reason("Connection refused") == "unreachable"
    assert refusals.kick_reason("Your IP address is banned from this channel.") == "channel_ban"
    assert refusals.kick_reason("Invalid channel name") == "no_channel"
    assert refusals.kick_reason("Duplicate login") is None


def test_the_example_config_logs_in_as_a_guest_name_few_sites_have_registered() -> None:
    from fakes.cytube_filters import login_error
    from rosey.config import load_config

    cfg = load_config(ROOT / "etc" / "config.example.json", env={})
    assert cfg.password == ""  # a guest, so the name must be one nobody registered
    assert cfg.bot_name.lower() not in ("roseybot", "rosey", "bot")  # taken on real sites
    assert any(ch.isdigit() for ch in cfg.bot_name)
    assert login_error(cfg.bot_name, "", None, False) is None  # a name CyTube accepts
    assert login_error(cfg.bot_name, "", "someone's", False) == "That username is registered."
