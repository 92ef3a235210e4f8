"""Folders 0700 and files 0600 by default; ``rosey --umask 027`` lets a group read.

(``rosey run`` end to end: tests/e2e/test_file_modes.py.)"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rosey.cli import exit_codes
from rosey.file_modes import atomic_write, parse_umask
from rosey.store.db import Store

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_parse_umask() -> None:
    assert parse_umask("077") == 0o077 and parse_umask("0027") == 0o027
    for bad in ("abc", "700", "1000", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_umask(bad)


def test_store_follows_the_umask_and_tightens_an_older_database(tmp_path: Path) -> None:
    loose = tmp_path / "old" / "rosey.db"
    loose.parent.mkdir(mode=0o755)
    sqlite3.connect(loose).close()
    os.chmod(loose, 0o644)
    os.chmod(loose.parent, 0o755)
    with umask(0o077):
        for path in (loose, tmp_path / "new" / "rosey.db"):
            store = Store(path)
            store.open()
            store.close()
            assert (mode(path.parent), mode(path)) == (0o700, 0o600), path
    shared = tmp_path / "shared" / "rosey.db"
    with umask(0o027):
        store = Store(shared)
        store.open()
        store.close()
    assert (mode(shared.parent), mode(shared)) == (0o750, 0o640)


@pytest.mark.integration
def test_backup_cli_default_private_and_operator_umask(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"channel": "c", "user": ["rosey", "pw"]}))
    (tmp_path / "data").mkdir()
    sqlite3.connect(tmp_path / "data" / "rosey.db").close()
    base = [sys.executable, "-m", "rosey.cli.main", "--config", str(cfg)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSEY_")}

    def backup(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *extra], capture_output=True, text=True, cwd=tmp_path,
                              env=env, timeout=60)

    done = backup("backup", str(tmp_path / "private" / "copy.db"))
    assert done.returncode == exit_codes.OK, done.stderr
    assert mode(tmp_path / "private") == 0o700 and mode(tmp_path / "private/copy.db") == 0o600
    done = backup("--umask", "027", "backup", str(tmp_path / "group" / "copy.db"))
    assert done.returncode == exit_codes.OK, done.stderr
    assert mode(tmp_path / "group") == 0o750 and mode(tmp_path / "group/copy.db") == 0o640
    refused = backup("--umask", "777", "backup", str(tmp_path / "none.db"))
    assert refused.returncode == exit_codes.CONFIG
    assert "the owner must keep read, write and search" in refused.stderr
    assert not (tmp_path / "none.db").exists()


def test_atomic_write_replaces_whole_with_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    with umask(0o077):
        atomic_write(target, '{"a": 1}')
    assert target.read_text() == '{"a": 1}' and mode(target) == 0o600
    with umask(0o027):
        atomic_write(target, b"\x00binary", durable=True)
    assert target.read_bytes() == b"\x00binary" and mode(target) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary left


def test_atomic_write_failure_keeps_the_old_file_and_leaves_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, "old")

    def refuse(src: object, dst: object) -> None:
        raise OSError("disk says no")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk says no"):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    with pytest.raises(FileNotFoundError):  # a missing folder is the caller's to report
        atomic_write(tmp_path / "nope" / "x", "data")
