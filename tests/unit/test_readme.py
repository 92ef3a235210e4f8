"""The README's commands work as written, and every page it sends a reader to exists."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command:
                commands.append(command)
    return commands


@pytest.mark.integration
def test_every_readme_command_is_a_make_target_or_a_copy_of_a_shipped_file() -> None:
    commands = readme_commands()
    assert "make run" in commands and "make test" in commands
    for command in commands:
        words = shlex.split(command)
        if words[0] == "cp":
            assert (ROOT / words[1]).is_file(), command
            continue
        assert words[0] == "make", f"README command not runnable from a fresh shell: {command}"
        # -n: what make would run, without running it; an unknown target fails here.
        done = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"{command}: {done.stderr}"


@pytest.mark.integration
def test_a_missing_make_target_is_caught() -> None:
    done = subprocess.run(["make", "-n", "no-such-target"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0


def test_every_linked_page_exists() -> None:
    links = re.findall(r"\]\(([^)#]+)\)", README)
    assert len(links) >= 8
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_docs_cite_only_files_in_the_repository() -> None:
    # Names the docs use for files that live only on the developers' machines.
    for page in [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]:
        text = page.read_text()
        assert "DESIGN.md" not in text and "DESIGN §" not in text, page
