"""``Records`` kept nowhere: for ``rosey ask``, ``rosey replay`` and tests without a database.

Every write is accepted and forgotten (a finished future, so nothing counts as a dropped
write); every read finds nothing.  The router code then never asks "is there a
store?": it always has records, some of them just do not last.
"""

from __future__ import annotations

import asyncio

from rosey.protocol import Turn
from rosey.router.limits import KeyState
from rosey.router.records import Future, JournalEntry, Records


def _done() -> Future:
    try:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    except RuntimeError:  # no loop, so nobody can wait for it: as a Store write would be
        return None
    future.set_result(None)
    return future


class MemoryRecords(Records):
    def __init__(self, channel: str) -> None:  # no Store: nothing is written
        self.channel = channel

    def chat(self, username: str, kind: str, text: str, when: float) -> Future:
        return _done()

    def user_seen(self, name: str, rank: float, when: float, message: bool) -> Future:
        return _done()

    def media(self, title: str, media_id: str, kind: str, seconds: float, when: float,
              queued_by: str = "") -> Future:
        return _done()

    def user_count(self, when: float, users: int, connections: int) -> Future:
        return _done()

    def peak(self, day: str, users: int, when: float) -> Future:
        return _done()

    def load_peak(self, day: str) -> tuple[int, float]:
        return 0, 0.0

    def turn(self, username: str, role: str, content: str, when: float, model: str = "",
             tokens: int = 0) -> Future:
        return _done()

    def forget(self, username: str) -> Future:
        return _done()

    async def history(self, username: str, limit: int) -> list[Turn]:
        return []

    def rate_limit(self, key: str, state: KeyState) -> Future:
        return _done()

    def load_rate_limits(self) -> dict[str, KeyState]:
        return {}

    def stats(self, day: str, username: str, ok: bool, prompt_tokens: int,
              completion_tokens: int, cost: float) -> None:
        return None

    def load_stats(self, day: str) -> dict[str, float]:
        return {}

    def spend_since(self, first_day: str) -> float:
        return 0.0

    def toggle(self, key: str, value: str) -> Future:
        return _done()

    def load_toggles(self) -> dict[str, str]:
        return {}

    def audit(self, actor: str, action: str, detail: str, ok: bool, when: float) -> Future:
        return _done()

    def journal_open(self, entry: JournalEntry, when: float) -> Future:
        return _done()

    def journal_replied(self, entry_id: str, reply: str, kind: str, when: float) -> Future:
        return _done()

    def journal_close(self, entry_id: str, when: float) -> Future:
        return _done()

    def load_journal(self) -> list[JournalEntry]:
        return []

    def prune(self, now: float, retention_days: float) -> None:
        return None
