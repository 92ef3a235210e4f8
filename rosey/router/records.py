"""What the router persists, as SQL over the Store: one method per fact.

Writes return the Store's commit future (or None when the queue was full); reads are
either synchronous (start-up, before the loop serves traffic) or async (in a thread).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rosey.protocol import Turn
from rosey.router.limits import KeyState
from rosey.store import Store
from rosey.store.schema import RETENTION_COLUMNS

Future = asyncio.Future[None] | None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: str
    username: str
    private: bool
    request: bytes
    received_at: float
    deadline: float
    state: str  # "open", "replied" (say not yet delivered), "delivered"
    reply: str
    reply_kind: str


class Records:
    def __init__(self, store: Store, channel: str):
        self.store = store
        self.channel = channel

    # ---- channel activity --------------------------------------------------

    def chat(self, username: str, kind: str, text: str, when: float) -> Future:
        return self.store.write(
            "INSERT INTO chat_log (channel, username, kind, text, time) VALUES (?, ?, ?, ?, ?)",
            (self.channel, username, kind, text, when))

    def user_seen(self, name: str, rank: float, when: float, message: bool) -> Future:
        return self.store.write(
            "INSERT INTO users (channel, name, first_seen, last_seen, messages, rank) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel, name) DO UPDATE SET "
            "last_seen = excluded.last_seen, messages = messages + excluded.messages, "
            "rank = excluded.rank",
            (self.channel, name, when, when, int(message), rank))

    def media(self, title: str, media_id: str, kind: str, seconds: float, when: float,
              queued_by: str = "") -> Future:
        return self.store.write(
            "INSERT INTO media (channel, title, media_id, type, seconds, started_at, queued_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.channel, title, media_id, kind, seconds, when, queued_by))

    def user_count(self, when: float, users: int, connections: int) -> Future:
        return self.store.write(
            "INSERT INTO user_counts (channel, time, users, connections) VALUES (?, ?, ?, ?)",
            (self.channel, when, users, connections))

    def peak(self, day: str, users: int, when: float) -> Future:
        """A new high-water mark for ``day`` (the first time it was reached is kept)."""
        return self.store.write(
            "INSERT INTO channel_peaks (channel, day, users, at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (channel, day) DO UPDATE SET users = excluded.users, at = excluded.at "
            "WHERE excluded.users > channel_peaks.users", (self.channel, day, users, when))

    def load_peak(self, day: str) -> tuple[int, float]:
        rows = self.store.query_sync("SELECT users, at FROM channel_peaks WHERE channel = ? AND "
                                     "day = ?", (self.channel, day))
        return (int(rows[0][0]), float(rows[0][1])) if rows else (0, 0.0)

    # ---- conversations -------------------------------------------------------

    def turn(self, username: str, role: str, content: str, when: float, model: str = "",
             tokens: int = 0) -> Future:
        return self.store.write(
            "INSERT INTO llm_conversations (channel, username, role, content, timestamp, "
            "model, tokens) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.channel, username.lower(), role, content, when, model, tokens))

    def forget(self, username: str) -> Future:
        return self.store.write(
            "DELETE FROM llm_conversations WHERE channel = ? AND username = ?",
            (self.channel, username.lower()))

    async def history(self, username: str, limit: int) -> list[Turn]:
        rows = await self.store.query(
            "SELECT role, content FROM llm_conversations WHERE channel = ? AND username = ? "
            "ORDER BY id DESC LIMIT ?", (self.channel, username.lower(), limit))
        return [Turn(role, content) for role, content in reversed(rows)]

    # ---- limits, stats, toggles, audit --------------------------------------

    def rate_limit(self, key: str, state: KeyState) -> Future:
        return self.store.write(
            "INSERT OR REPLACE INTO llm_rate_limits (channel, key, last_accept, day, day_count, "
            "tokens, tokens_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.channel, key, state.last_accept, state.day, state.day_count, state.tokens,
             state.tokens_at))

    def load_rate_limits(self) -> dict[str, KeyState]:
        rows = self.store.query_sync(
            "SELECT key, last_accept, day, day_count, tokens, tokens_at FROM llm_rate_limits "
            "WHERE channel = ?", (self.channel,))
        return {row[0]: KeyState(*row[1:]) for row in rows}

    def stats(self, day: str, username: str, ok: bool, prompt_tokens: int,
              completion_tokens: int, cost: float) -> None:
        self.store.write(
            "INSERT INTO llm_stats (channel, day, requests, successes, failures, prompt_tokens, "
            "completion_tokens, cost_usd) VALUES (?, ?, 1, ?, ?, ?, ?, ?) "
            "ON CONFLICT (channel, day) DO UPDATE SET requests = requests + 1, "
            "successes = successes + excluded.successes, failures = failures + "
            "excluded.failures, prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
            "completion_tokens = completion_tokens + excluded.completion_tokens, "
            "cost_usd = cost_usd + excluded.cost_usd",
            (self.channel, day, int(ok), int(not ok), prompt_tokens, completion_tokens, cost))
        self.store.write("INSERT OR IGNORE INTO llm_stats_users (channel, day, username) "
                         "VALUES (?, ?, ?)", (self.channel, day, username.lower()))

    def load_stats(self, day: str) -> dict[str, float]:
        rows = self.store.query_sync(
            "SELECT requests, successes, failures, prompt_tokens, completion_tokens, cost_usd "
            "FROM llm_stats WHERE channel = ? AND day = ?", (self.channel, day))
        users = self.store.query_sync(
            "SELECT COUNT(*) FROM llm_stats_users WHERE channel = ? AND day = ?",
            (self.channel, day))
        keys = ("requests", "successes", "failures", "prompt_tokens", "completion_tokens",
                "cost_usd")
        values: dict[str, float] = dict(zip(keys, rows[0], strict=True)) if rows else \
            dict.fromkeys(keys, 0.0)
        values["unique_users"] = float(users[0][0])
        return values

    def spend_since(self, first_day: str) -> float:
        """Every channel's spend since ``first_day`` (served now or not: the budget is the
        deployment's, and a channel removed today has spent today's money all the same)."""
        rows = self.store.query_sync(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM llm_stats WHERE day >= ?", (first_day,))
        return float(rows[0][0])

    def toggle(self, key: str, value: str) -> Future:
        return self.store.write(
            "INSERT OR REPLACE INTO toggles (channel, key, value) VALUES (?, ?, ?)",
            (self.channel, key, value))

    def load_toggles(self) -> dict[str, str]:
        rows = self.store.query_sync("SELECT key, value FROM toggles WHERE channel = ?",
                                     (self.channel,))
        return dict(rows)

    def audit(self, actor: str, action: str, detail: str, ok: bool, when: float) -> Future:
        return self.store.write(
            "INSERT INTO audit (channel, actor, action, detail, ok, time) "
            "VALUES (?, ?, ?, ?, ?, ?)", (self.channel, actor, action, detail, int(ok), when))

    # ---- the trigger journal ------------------------------------------------

    def journal_open(self, entry: JournalEntry, when: float) -> Future:
        return self.store.write(
            "INSERT OR REPLACE INTO journal (id, channel, username, private, request, "
            "received_at, deadline, state, reply, reply_kind, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'open', '', '', ?)",
            (entry.id, self.channel, entry.username, int(entry.private), entry.request,
             entry.received_at, entry.deadline, when))

    def journal_replied(self, entry_id: str, reply: str, kind: str, when: float) -> Future:
        return self.store.write(
            "UPDATE journal SET state = 'replied', reply = ?, reply_kind = ?, updated = ? "
            "WHERE id = ?", (reply, kind, when, entry_id))

    def journal_close(self, entry_id: str, when: float) -> Future:
        return self.store.write("UPDATE journal SET state = 'delivered', updated = ? "
                                "WHERE id = ?", (when, entry_id))

    def load_journal(self) -> list[JournalEntry]:
        rows = self.store.query_sync(
            "SELECT id, username, private, request, received_at, deadline, state, reply, "
            "reply_kind FROM journal WHERE channel = ? AND state != 'delivered' "
            "ORDER BY received_at", (self.channel,))
        return [JournalEntry(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], r[7], r[8])
                for r in rows]

    # ---- retention -------------------------------------------------------------

    def prune(self, now: float, retention_days: float) -> None:
        cutoff = now - retention_days * 86400
        for table, column in RETENTION_COLUMNS.items():
            extra = " AND state = 'delivered'" if table == "journal" else ""
            self.store.write(f"DELETE FROM {table} WHERE {column} < ?{extra}", (cutoff,))
