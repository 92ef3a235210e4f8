"""The CyTube frames recorded from a live 3.86 server (tests/data/cytube-transcript.jsonl).

Each frame: ``{"dir": "in"|"out", "event", "data", "t", "scenario", "client"}``. ``connect``,
``disconnect`` and ``connect_error`` are python-socketio lifecycle callbacks, not server frames.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

# Kept in the repository: the tests must run from a plain clone (docs/cytube/PROTOCOL.md
# describes the same recording).
TRANSCRIPT_PATH = Path(__file__).resolve().parent / "data" / "cytube-transcript.jsonl"

#: python-socketio callbacks recorded as "in" frames; they are not sent by the server.
LIFECYCLE_EVENTS = frozenset({"connect", "disconnect", "connect_error"})


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, Any], ...]:
    with TRANSCRIPT_PATH.open(encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def frames(
    scenario: str | None = None, client: str | None = None, direction: str | None = None
) -> list[dict[str, Any]]:
    """Frames in recorded order, filtered by scenario, client and direction ("in"/"out")."""
    return [
        f
        for f in _load()
        if (scenario is None or f["scenario"] == scenario)
        and (client is None or f["client"] == client)
        and (direction is None or f["dir"] == direction)
    ]
