"""``rosey replay``: the router's real decisions on a virtual clock, from several log forms."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from rosey.config import parse_config
from rosey.tools.replay import LogLine, read_log, replay
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


def test_cli(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"channel": "c", "user": ["rosey", "pw"]}))
    log = tmp_path / "chat.txt"
    log.write_text("[1800000000] alice: rosey hi\n[1800000001] bob: hello\n")
    done = subprocess.run([sys.executable, "-m", "rosey.cli", "--config", str(cfg), "replay",
                           str(log), "--answer", "hey"], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "reply: alice: hey" in done.stdout
    assert "2 lines; addressed to the bot: accepted 1; replies posted: 1" in done.stdout
