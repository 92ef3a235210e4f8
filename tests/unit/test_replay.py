"""``rosey replay``: the router's real decisions on a virtual clock, from several log forms."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from rosey.cli import exit_codes
from rosey.cli.replay import LogError, LogLine, parse_stamp, read_log, replay
from rosey.config import parse_config
from tests.transcript import TRANSCRIPT_PATH

ROOT = Path(__file__).resolve().parents[2]


def config(tmp: Path, **llm: object):  # type: ignore[no-untyped-def]
    return parse_config({"channel": "chan", "user": ["rosey", "pw"],
                         "llm": {"llm_cooldown": 10, "response_timeout": 5, **llm}},
                        base_dir=tmp, env={})


async def test_decisions_on_a_virtual_clock(tmp_path: Path) -> None:
    t = 1_800_000_000.0
    lines = [
        LogLine(t, "alice", "rosey, hi"),
        LogLine(t + 1, "bob", "nice weather"),
        LogLine(t + 3, "alice", "rosey, again?"),  # inside alice's cooldown
        LogLine(t + 3, "bob", "ROSEY!"),
        LogLine(t + 12, "alice", "rosey, now?"),
    ]
    out = io.StringIO()
    totals = await replay(config(tmp_path), lines, latency=1.0, answer="ok", out=out)
    assert totals.decisions == {"accepted": 3, "refused": 1}
    assert totals.replies == {"chat": 3}
    text = out.getvalue()
    assert "refused   alice: rosey, again?  (user limit, 7 s left)" in text
    assert text.count("reply: alice: ok") == 2 and "reply: bob: ok" in text


async def test_slow_model_gets_fallback_and_coalescing_shows(tmp_path: Path) -> None:
    t = 1_800_000_000.0
    cfg = config(tmp_path, fallback_response="Sorry.")
    cfg.callers.count, cfg.callers.slots = 1, 1
    lines = [LogLine(t, "alice", "rosey one"), LogLine(t + 0.1, "bob", "rosey two"),
             LogLine(t + 0.2, "bob", "rosey three")]
    out = io.StringIO()
    totals = await replay(cfg, lines, latency=8.0, out=out)
    assert totals.decisions == {"accepted": 2, "coalesced": 1}
    assert "reply: alice: Sorry." in out.getvalue() and "reply: bob: Sorry." in out.getvalue()


def test_reads_recorded_frames_text_lines_and_the_database(tmp_path: Path) -> None:
    frames = read_log(TRANSCRIPT_PATH)
    assert len(frames) > 100 and all(line.time > 1e9 for line in frames)
    assert any(line.text == "<b>bold tag</b> & \"double\" 'single' (parens)" for line in frames)
    log = tmp_path / "chat.txt"
    log.write_text("[1800000000] alice: rosey hi\n[2027-02-01T10:00:00+00:00] bob: yo\nnoise\n")
    assert [(ln.username, ln.text) for ln in read_log(log)] == [("alice", "rosey hi"),
                                                               ("bob", "yo")]
    jsonl = tmp_path / "chat.jsonl"
    jsonl.write_text(json.dumps({"username": "carol", "msg": "a &amp; b", "time": 1.8e12}))
    assert read_log(jsonl) == [LogLine(1.8e9, "carol", "a & b")]


@pytest.mark.integration
def test_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"channel": "c", "user": ["rosey", "pw"]}))
    log = tmp_path / "chat.txt"
    log.write_text("[1800000000] alice: rosey hi\n[1800000001] bob: hello\n")
    done = subprocess.run([sys.executable, "-m", "rosey.cli.main", "--config", str(cfg), "replay",
                           str(log), "--answer", "hey"], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "reply: alice: hey" in done.stdout
    assert "2 lines; addressed to the bot: accepted 1; replies posted: 1" in done.stdout


def test_text_stamps_in_every_documented_form(tmp_path: Path) -> None:
    day = date(2027, 2, 1)
    at = datetime(2027, 2, 1, 12, 0, 1).timestamp()
    log = tmp_path / "chat.txt"
    log.write_text("[12:00:01] alice: rosey hi\n"  # the README's form: a bare time, today
                   "[12:00:05] bob: yo\n"
                   "[2027-02-01 12:00:06] carol: full date\n"
                   "[2027-02-01T12:00:07] dave: ISO\n"
                   "[23:59:59] erin: late\n"
                   "[00:00:02] frank: past midnight is the next day\n")
    lines = read_log(log, day=day)
    assert [(ln.time - at, ln.username) for ln in lines] == [
        (0, "alice"), (4, "bob"), (5, "carol"), (6, "dave"), (43198, "erin"), (43201, "frank")]
    assert parse_stamp("12:00", day) == at - 1
    with pytest.raises(ValueError, match=r"unknown time 'noon'; expected \[HH:MM:SS\]"):
        parse_stamp("noon", day)


def test_unreadable_logs_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("[12:00:01] alice: fine\n[half past] bob: hm\n")
    with pytest.raises(LogError, match=r"bad\.txt:2: unknown time 'half past'"):
        read_log(bad)
    broken = tmp_path / "frames.jsonl"
    broken.write_text('{"username": "a", "msg": "x", "time": 1}\n{"username": "b"}\n{oops\n')
    with pytest.raises(LogError, match=r"frames\.jsonl:2: missing 'time'"):
        read_log(broken)
    with pytest.raises(LogError, match=r"nothing\.txt: cannot read it \(No such file"):
        read_log(tmp_path / "nothing.txt")
    with pytest.raises(LogError, match=r"nothing\.db: no such file"):
        read_log(tmp_path / "nothing.db")
    (tmp_path / "other.db").write_bytes(b"not sqlite at all, just bytes" * 10)
    with pytest.raises(LogError, match=r"other\.db: not a rosey database"):
        read_log(tmp_path / "other.db")


@pytest.mark.integration
def test_cli_bare_times_missing_file_and_help(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"channel": "c", "user": ["rosey", "pw"]}))
    log = tmp_path / "chat.txt"
    log.write_text("[12:00:01] alice: rosey hi\n[12:00:02] bob: hello\n")
    base = [sys.executable, "-m", "rosey.cli.main", "--config", str(cfg), "replay"]
    done = subprocess.run([*base, str(log)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == exit_codes.OK, done.stderr
    assert "reply: alice: (the model's answer)" in done.stdout
    missing = subprocess.run([*base, str(tmp_path / "gone.txt")], capture_output=True,
                             text=True, cwd=ROOT)
    assert missing.returncode == exit_codes.CONFIG and missing.stdout == ""
    assert missing.stderr == f"rosey: replay: {tmp_path / 'gone.txt'}: cannot read it " \
        "(No such file or directory)\n"
    usage = subprocess.run([*base, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert "the text every simulated model call answers with" in usage.stdout
