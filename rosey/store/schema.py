"""Versioned schema migrations, run before the router starts.  Append, never edit."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE chat_log (
        id INTEGER PRIMARY KEY, channel TEXT NOT NULL, username TEXT NOT NULL,
        kind TEXT NOT NULL, text TEXT NOT NULL, time REAL NOT NULL);
    CREATE INDEX chat_log_time ON chat_log(time);
    CREATE TABLE users (
        channel TEXT NOT NULL, name TEXT NOT NULL, first_seen REAL NOT NULL,
        last_seen REAL NOT NULL, messages INTEGER NOT NULL DEFAULT 0, rank REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (channel, name));
    CREATE TABLE media (
        id INTEGER PRIMARY KEY, channel TEXT NOT NULL, title TEXT NOT NULL, media_id TEXT,
        type TEXT, seconds REAL, started_at REAL NOT NULL);
    CREATE INDEX media_time ON media(started_at);
    CREATE TABLE llm_conversations (
        id INTEGER PRIMARY KEY, channel TEXT NOT NULL, username TEXT NOT NULL,
        role TEXT NOT NULL, content TEXT NOT NULL, timestamp REAL NOT NULL,
        model TEXT NOT NULL DEFAULT '', tokens INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX llm_conversations_user ON llm_conversations(channel, username, id);
    CREATE INDEX llm_conversations_time ON llm_conversations(timestamp);
    CREATE TABLE llm_rate_limits (
        channel TEXT NOT NULL, key TEXT NOT NULL, last_accept REAL NOT NULL,
        day TEXT NOT NULL DEFAULT '', day_count INTEGER NOT NULL DEFAULT 0,
        tokens REAL NOT NULL DEFAULT 0, tokens_at REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (channel, key));
    CREATE TABLE llm_stats (
        channel TEXT NOT NULL, day TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 0,
        successes INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0, PRIMARY KEY (channel, day));
    CREATE TABLE llm_stats_users (
        channel TEXT NOT NULL, day TEXT NOT NULL, username TEXT NOT NULL,
        PRIMARY KEY (channel, day, username));
    CREATE TABLE journal (
        id TEXT PRIMARY KEY, channel TEXT NOT NULL, username TEXT NOT NULL,
        private INTEGER NOT NULL, request BLOB NOT NULL, received_at REAL NOT NULL,
        deadline REAL NOT NULL, state TEXT NOT NULL, reply TEXT NOT NULL DEFAULT '',
        reply_kind TEXT NOT NULL DEFAULT '', updated REAL NOT NULL);
    CREATE INDEX journal_state ON journal(state);
    CREATE TABLE toggles (
        channel TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (channel, key));
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY, channel TEXT NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', ok INTEGER NOT NULL,
        time REAL NOT NULL);
    CREATE INDEX audit_time ON audit(time);
    """,
    # 2: channel statistics: user-count samples, daily peaks, who queued the media
    """
    CREATE TABLE user_counts (
        id INTEGER PRIMARY KEY, channel TEXT NOT NULL, time REAL NOT NULL,
        users INTEGER NOT NULL, connections INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX user_counts_time ON user_counts(channel, time);
    CREATE TABLE channel_peaks (
        channel TEXT NOT NULL, day TEXT NOT NULL, users INTEGER NOT NULL, at REAL NOT NULL,
        PRIMARY KEY (channel, day));
    ALTER TABLE media ADD COLUMN queued_by TEXT NOT NULL DEFAULT '';
    CREATE INDEX chat_log_channel_time ON chat_log(channel, time);
    """,
]

# Tables and the column that dates their rows, for retention.
RETENTION_COLUMNS = {
    "chat_log": "time",
    "media": "started_at",
    "llm_conversations": "timestamp",
    "audit": "time",
    "journal": "updated",
    "user_counts": "time",
    "channel_peaks": "at",
    "users": "last_seen",
}


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest version; returns it."""
    current = version(conn)
    if current > len(MIGRATIONS):
        raise RuntimeError(f"database is at schema {current}, newer than this Rosey "
                           f"({len(MIGRATIONS)}); upgrade Rosey or restore a backup")
    for number in range(current, len(MIGRATIONS)):
        conn.executescript(f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number + 1}; "
                           "COMMIT;")
    return version(conn)
