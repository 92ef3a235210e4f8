"""CyTube's rank numbers and their names (PROTOCOL §4), for log lines and ``rosey doctor``."""

from __future__ import annotations

NAMES = ((255, "site admin"), (5, "founder"), (4, "owner"), (3, "channel admin"),
         (2, "moderator"), (1.5, "leader"), (1, "registered user"), (0, "guest"),
         (-1, "anonymous"))


def name(rank: float) -> str:
    return next((label for floor, label in NAMES if rank >= floor), "anonymous")


def label(rank: float) -> str:
    """``2 (moderator)``."""
    return f"{rank:g} ({name(rank)})"
