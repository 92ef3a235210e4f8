"""The folders are the processes, and what may import what (docs/ARCHITECTURE.md "Layout").

conn, router, caller and events each import only the kernel (``rosey/*.py``) and their own
folder; the router also the store; the store only the kernel; the kernel only itself; the
CLI anything.  Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROSEY = Path(__file__).resolve().parents[2] / "rosey"
PROCESSES = {"conn", "router", "caller", "events"}
# The one kernel -> process import: validating router.command_ranks needs the router's
# table of command names (a constant; config_checks imports it lazily, no router state).
KERNEL_EXCEPTIONS = {("config_checks", "rosey.router.commands")}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rosey"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "rosey":  # from rosey import metrics -> rosey.metrics
                found.update(f"rosey.{a.name}" for a in node.names)
            elif node.module.startswith("rosey."):
                found.add(node.module)
    return found


def kernel_modules() -> set[str]:
    return {p.stem for p in ROSEY.glob("*.py") if p.stem != "__init__"}


def violation(folder: str, module: str, imported: str) -> str | None:
    """Why ``rosey/<folder>/<module>.py`` (folder "" = the kernel) may not import
    ``imported``, or None when it may."""
    target = imported.split(".")[1] if "." in imported else ""
    allowed = (folder == "cli" or target in kernel_modules() or target == folder
               or (folder == "router" and target == "store")
               or (folder == "" and (module, imported) in KERNEL_EXCEPTIONS))
    if allowed:
        return None
    where = f"rosey/{folder + '/' if folder else ''}{module}.py"
    return f"{where} imports {imported}"


def test_each_folder_imports_only_the_kernel_and_itself() -> None:
    problems = []
    for path in sorted(ROSEY.rglob("*.py")):
        folder = "" if path.parent == ROSEY else path.parent.name
        for imported in sorted(imports_of(path)):
            why = violation(folder, path.stem, imported)
            if why:
                problems.append(why)
    assert problems == []


def test_the_rule_catches_a_crossing() -> None:
    assert violation("router", "core", "rosey.caller.providers") == (
        "rosey/router/core.py imports rosey.caller.providers")
    assert violation("caller", "service", "rosey.router.dispatch") is not None
    assert violation("conn", "client", "rosey.store.db") is not None
    assert violation("", "metrics", "rosey.conn.refusals") is not None
    assert violation("router", "records", "rosey.store.db") is None
    assert violation("cli", "doctor", "rosey.conn.session") is None
    assert violation("caller", "service", "rosey.protocol") is None


def test_processes_are_folders() -> None:
    assert {p.name for p in ROSEY.iterdir() if p.is_dir()} >= PROCESSES
