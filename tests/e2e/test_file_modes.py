"""What ``rosey run`` writes is the bot user's alone: folders 0700, files 0600 (the chat log
and conversations are in the database; the control sockets are in the run dir)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from fakes.cytube import FakeCytube
from fakes.llm import FakeLLM
from tests.e2e.harness import Rosey, deployed, expect_lines


def modes(root: Path) -> dict[str, int]:
    """Permission bits of ``root`` and of everything under it, by relative path."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.mark.timeout(60)
async def test_run_dir_data_dir_database_and_backups_are_private(cytube: FakeCytube) -> None:
    async with FakeLLM("ollama", models=["m"]) as llm:
        rosey = Rosey(cytube, {"provider": "ollama", "model": "m", "ollama_host": llm.url})
        # What an older version left: a world-readable folder and database.
        data = rosey.home / "data"
        data.mkdir(mode=0o755)
        (data / "rosey.db").touch(mode=0o644)
        os.chmod(data / "rosey.db", 0o644)
        async with deployed(rosey, cytube):
            await cytube.say_as("alice", "rosey, hello")
            await expect_lines(cytube, rosey, 1)
            backup = await asyncio.to_thread(rosey.cli, "backup")
            assert backup.returncode == 0, backup.stderr
            run, stored = modes(rosey.run_dir), modes(data)
    # It did happen: the files that matter exist (the WAL while the router runs).
    assert {"supervisord.conf", "supervisord.log", "supervisor.sock"} <= set(run), run
    assert {"rosey.db", "rosey.db-wal", "rosey.db-shm", "backups"} <= set(stored), stored
    assert any(name.startswith("backups/rosey-") for name in stored), stored
    # And nothing in them is open to the group or to others.
    assert {name: oct(mode) for name, mode in {**run, **stored}.items() if mode & 0o077} == {}
    assert run["."] == stored["."] == stored["backups"] == 0o700
    assert stored["rosey.db"] == stored["rosey.db-wal"] == 0o600
