"""Online backup of the live database (SQLite's backup API: consistent while the router
keeps writing)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path


def backup(source: str | Path, dest: str | Path, pages_per_step: int = 256) -> int:
    """Copy ``source`` to ``dest``; prints progress; returns the bytes written."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    out = sqlite3.connect(dest)

    def progress(status: int, remaining: int, total: int) -> None:
        done = total - remaining
        print(f"\rbackup: {done}/{total} pages", end="", file=sys.stderr, flush=True)

    try:
        src.backup(out, pages=pages_per_step, progress=progress)
    finally:
        out.close()
        src.close()
    print(file=sys.stderr)
    return dest.stat().st_size
