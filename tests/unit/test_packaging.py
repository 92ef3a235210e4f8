"""What ``pip install .`` gives a user: everything under ``rosey`` (no generic top-level
names such as ``procs``), complete enough to run: the supervisord programs' entry points
and the example config that the "no config" message offers to write."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # pip builds and installs the wheel in subprocesses

ROOT = Path(__file__).resolve().parents[2]


def source_files() -> list[str]:
    """The files a fresh clone has (tracked, plus new ones not yet committed)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=ROOT, capture_output=True, check=True).stdout
    names = [name for name in out.decode().split("\0") if name]
    assert "pyproject.toml" in names, "git ls-files did not list this repository"
    return [name for name in names if (ROOT / name).is_file()]


def build_wheel(tmp: Path) -> Path:
    """Build from a clean copy: setuptools reuses a stale build/ folder in the checkout."""
    src = tmp / "src"
    for name in source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           str(src), "-w", str(tmp / "wheel")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    wheels = list((tmp / "wheel").glob("rosey-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.timeout(400)
def test_wheel_is_complete_and_claims_only_rosey(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names}
    dist_info = next(top for top in tops if top.endswith(".dist-info"))
    assert tops == {"rosey", dist_info}, tops
    # The repository's other top-level packages (the fake servers that bench/ and tests/
    # share, the benches, the tests) stay out of what a user installs.
    for folder in ("fakes", "bench", "tests"):
        assert (ROOT / folder / "__init__.py").is_file(), folder
        assert not any(name.startswith(f"{folder}/") for name in names), folder
    assert zipfile.ZipFile(wheel).read(f"{dist_info}/top_level.txt").split() == [b"rosey"]
    # Every module of the repository's rosey/ and procs/ is in it (a subpackage missing
    # from pyproject's package list fails here), procs/ as rosey/procs/.
    expected = {str(path.relative_to(ROOT)) for path in (ROOT / "rosey").rglob("*.py")}
    expected |= {f"rosey/{path.relative_to(ROOT)}" for path in (ROOT / "procs").glob("*.py")}
    assert expected - names == set()
    assert {"rosey/examples/config.example.json", "rosey/examples/prompt.example.md",
            "rosey/templates/supervisord.conf.in"} <= names
    # Every program in the supervisord template is a module the wheel has.
    template = (ROOT / "rosey/templates/supervisord.conf.in").read_text()
    modules = re.findall(r"^command=\$\{python\} -m ([\w.]+)", template, re.MULTILINE)
    assert len(modules) == 4 and all(m.startswith("rosey.procs.") for m in modules), modules
    assert {m.replace(".", "/") + ".py" for m in modules} <= names

    # Installed alone (the checkout out of reach), a pip user's commands work.
    target, work = tmp_path / "site", tmp_path / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(target), str(wheel)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSEY_")}
    env["PYTHONPATH"] = str(target)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              cwd=work, env=env, timeout=60)

    where = run("-c", "import rosey, rosey.procs.router, rosey.procs.caller, "
                "rosey.procs.conn, rosey.procs.events; print(rosey.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip() == str(target / "rosey" / "__init__.py")
    missing = run("-m", "rosey.cli.main", "check-config")
    assert missing.returncode == 2 and "`rosey init-config config.json`" in missing.stderr
    init = run("-m", "rosey.cli.main", "init-config", "config.json", "--prompt", "prompt.md")
    assert init.returncode == 0, init.stderr
    assert (work / "config.json").read_text() != "" and (work / "prompt.md").exists()
    # The example as written names a channel to set: check-config then accepts it.
    checked = run("-m", "rosey.cli.main", "check-config", "config.json")
    assert checked.returncode == 0, checked.stderr
    assert "prompt.md" not in checked.stderr  # the prompt file it names was found
    usage = run("-m", "rosey.procs.router", "--help")
    assert usage.returncode == 0 and "rosey-router" in usage.stdout, usage.stderr
