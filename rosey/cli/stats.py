"""``rosey stats``: channel statistics from the database (read-only, safe while running)."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rosey.cli import exit_codes
from rosey.config import Config
from rosey.store import chanstats


def end_of(day: str, tz: ZoneInfo) -> float:
    """The last second of ``day`` (YYYY-MM-DD) in ``tz``."""
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=tz)
    return (start + timedelta(days=1)).timestamp() - 1


def run_stats(children: list[Config], days: int, until: str = "",
              as_json: bool = False) -> int:
    """A report per channel of ``children`` (one database: they share ``paths``)."""
    if days < 1:
        print("rosey: --days must be 1 or more", file=sys.stderr)
        return exit_codes.CONFIG
    try:  # each channel's day ends in its own time zone
        ends = [end_of(until, ZoneInfo(c.router.limits.timezone)) if until else time.time()
                for c in children]
    except ValueError:
        print(f"rosey: --until {until!r}: expected a day such as 2026-11-30", file=sys.stderr)
        return exit_codes.CONFIG
    # Usage first: a bad option is CONFIG whether or not a database exists yet.
    path = Path(children[0].paths.database)
    if not path.exists():
        print(f"rosey: no database at {path} yet", file=sys.stderr)
        return exit_codes.FAILED
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        def query(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return conn.execute(sql, tuple(params)).fetchall()

        reports = [chanstats.report(query, c.channel, days, now,
                                    ZoneInfo(c.router.limits.timezone))
                   for c, now in zip(children, ends, strict=True)]
    finally:
        conn.close()
    if as_json:  # one channel: its report; several: {"channels": [one per channel]}
        data: Any = reports[0].as_dict() if len(reports) == 1 else \
            {"channels": [r.as_dict() for r in reports]}
        print(json.dumps(data, indent=2))
    else:
        print("\n\n".join(chanstats.render(r) for r in reports))
    return exit_codes.OK
