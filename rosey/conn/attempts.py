"""The reconnect policy's memory on disk: one small JSON file per channel in the run dir.

supervisord restarting a crashed conn (or a session restarted after a crash) must not reset
the backoff: a crash loop would otherwise hammer the server's per-IP limits. ``backoff.py``
decides from an ``AttemptLog``; this module is where it is read and written.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from rosey.conn.backoff import MAX_LOGGED, AttemptLog
from rosey.file_modes import atomic_write

log = logging.getLogger("rosey.conn")


def path_for(run_dir: str, channel: str) -> Path:
    return Path(run_dir) / f"conn-{channel}.json"


def load(path: Path) -> AttemptLog:
    """The saved log; a missing or unreadable file is a fresh start."""
    try:
        raw = json.loads(path.read_text())
        return AttemptLog(attempts=[float(t) for t in raw.get("attempts", [])][-MAX_LOGGED:],
                          failures=int(raw.get("failures", 0)),
                          kicks=[float(t) for t in raw.get("kicks", [])][-MAX_LOGGED:],
                          guest_login=float(raw.get("guest_login", 0.0)))
    except FileNotFoundError:
        return AttemptLog()
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return AttemptLog()


def save(path: Path, attempts: AttemptLog) -> None:
    try:
        atomic_write(path, json.dumps(asdict(attempts)))  # a crash never leaves half a file
    except OSError as exc:
        log.warning("cannot persist the connection log %s: %s", path, exc)
