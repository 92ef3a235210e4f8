"""`rosey run > run.log` (a shell redirect: the file is opened without O_APPEND).

supervisord writes its own lines through the inherited descriptor while each program's
log handler reopens ``/dev/stdout`` as a new open file; without ``O_APPEND`` on the
inherited one, supervisord's lines land at a stale offset over the programs' lines.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests.e2e.harness import Rosey, bot_lines, deployed, expect_lines

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
# supervisord's own format, or a program's (rosey.logs): time, process, level, logger.
LINE = re.compile(rf"^{STAMP} (?:(?:CRIT|ERRO|WARN|INFO|DEBG|TRAC|BLAT) "
                  rf"|(?:conn|router|caller-\d+) (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: )")
MENTIONS = 6


@pytest.mark.timeout(90)
async def test_every_line_arrives_whole_through_a_shell_redirect(cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["m"]) as llm:
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url,
                               "llm_cooldown": 0})
        out = rosey.home / "run.log"
        command = (f"exec {shlex.quote(sys.executable)} -m rosey.cli.main --config "
                   f"{shlex.quote(str(rosey.config_path))} run > {shlex.quote(str(out))} 2>&1")
        rosey.log_path = out  # what rosey.logs() shows on a failure
        # Popen returns once the child is forked; the wait for it is Rosey.stop's, in a thread.
        rosey.proc = subprocess.Popen(["/bin/sh", "-c", command], env=rosey.env(),  # noqa: ASYNC220
                                      start_new_session=True)
        async with deployed(rosey, cytube):
            for n in range(MENTIONS):
                await cytube.say_as("alice", f"rosey line {n}")
                await expect_lines(cytube, rosey, n + 1)
            assert len(bot_lines(cytube)) == MENTIONS
            # `rosey run` became supervisord (no parent left idling beside it), and the
            # short-lived copy that started the callers is gone.
            assert "rosey.cli.supervisord_main" in _cmdline(rosey.proc.pid)
            kids = sorted(_cmdline(pid).split(" -m ")[1].split()[0] for pid in
                          _children(rosey.proc.pid))
            assert kids == ["rosey.procs.caller", "rosey.procs.caller", "rosey.procs.conn",
                            "rosey.procs.events", "rosey.procs.router"], kids
            code = await rosey.stop()  # then what it left behind, before it is removed
            text = out.read_text(errors="replace")
            supervisord_log = (rosey.run_dir / "supervisord.log").read_text().splitlines()
    assert code == 0, text[-3000:]
    lines = text.splitlines()
    assert "\0" not in text
    garbled = [line for line in lines if not LINE.match(line) or len(re.findall(STAMP, line)) > 1]
    assert garbled == [], "\n".join(garbled[:20])
    # In full: every line supervisord logged to its own file, and each process's own lines.
    missing = [line for line in supervisord_log if line not in lines]
    assert missing == [] and len(supervisord_log) > 10, missing[:20]
    for wanted in ("conn INFO rosey.conn: joined", "router INFO rosey.router: router up",
                   "caller-0 INFO rosey.caller: caller-0 up",
                   "caller-1 INFO rosey.caller: caller-1 up",
                   "INFO stopped: conn (exit status 0)", "INFO stopped: router (exit status 0)"):
        assert sum(wanted in line for line in lines) == 1, (wanted, text[-3000:])
    answered = [line for line in lines if re.search(r"caller-\d INFO rosey.caller: request \S+ "
                                                    r"ok via ollama/m", line)]
    assert len(answered) == MENTIONS, text[-3000:]
    said = [line for line in lines if re.search(r"conn DEBUG rosey.conn: say \S+ received", line)]
    assert len(said) == MENTIONS, text[-3000:]


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().decode(errors="replace").replace("\0", " ")


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(p) for p in handle.read().split()]
