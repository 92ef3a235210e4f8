"""The repository stands on its own: nothing in it reads a folder beside the checkout.

Our machines and CI keep design notes in a folder next to the repository; a user who
clones it does not have that folder, so no file may name it (the tests carry their data in
``tests/data``).
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Spelled in pieces so that no literal in this file names the folder (it must not match
# itself, nor any other scan for that name).
_SIBLING = "sha" + "red"
FORBIDDEN = ("../" + _SIBLING, "/" + _SIBLING + "/cytube", "parents[1]" + ".parent")


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / name for name in out.stdout.decode().split("\0") if name]


@pytest.mark.integration
def test_no_file_names_the_folder_beside_the_checkout() -> None:
    files = tracked_files()
    assert len(files) > 50, "git ls-files listed too few files to be this repository"
    offenders = []
    for path in files:
        if not path.is_file() or path.suffix in {".jsonl", ".png"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {needle}" for needle in FORBIDDEN
                      if needle in text]
    assert offenders == []


def test_the_checker_sees_a_planted_reference(tmp_path: Path) -> None:
    planted = tmp_path / "x.py"
    planted.write_text('open("' + FORBIDDEN[0] + '/cytube/transcript.jsonl")\n')
    assert any(needle in planted.read_text() for needle in FORBIDDEN)


def test_the_recording_is_in_the_repository() -> None:
    from tests.transcript import TRANSCRIPT_PATH, frames

    assert ROOT in TRANSCRIPT_PATH.parents
    assert len(frames()) > 500


def imported_packages(folder: str) -> dict[str, set[str]]:
    """Top-level package of every import in ``folder``'s modules, by module."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_bench_and_fakes_import_nothing_of_the_tests() -> None:
    """bench/ runs outside pytest; fakes/ (the fake servers and the deployment runner) is
    what it shares with tests/, so neither reaches into tests/."""
    for folder in ("bench", "fakes"):
        found = imported_packages(folder)
        assert len(found) > 3 and any("fakes" in names for names in found.values()), folder
        assert [module for module, names in found.items() if "tests" in names] == []
    # the paired case: the scan sees an import of tests where there is one
    assert any("tests" in names for names in imported_packages("tests/e2e").values())
