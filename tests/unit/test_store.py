"""The SQLite store: migrations, batched writes off the loop, durability after kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rosey.router.records import JournalEntry, Records
from rosey.store import Store
from rosey.store.schema import MIGRATIONS, migrate

ROOT = Path(__file__).resolve().parents[2]


def test_migrations_are_versioned_and_idempotent(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    assert migrate(conn) == len(MIGRATIONS)
    assert migrate(conn) == len(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"chat_log", "llm_conversations", "llm_rate_limits", "llm_stats", "journal",
            "toggles", "audit", "users", "media"} <= tables
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this Rosey"):
        migrate(conn)


async def test_writes_commit_in_order_and_reads_see_them(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.open()
    records = Records(store, "chan")
    futures = [records.turn("Alice", "user", f"m{n}", float(n)) for n in range(50)]
    await asyncio.gather(*[f for f in futures if f is not None])
    turns = await records.history("alice", 3)
    assert [t.content for t in turns] == ["m47", "m48", "m49"]
    forgotten = records.forget("ALICE")
    assert forgotten is not None
    await forgotten
    assert await records.history("alice", 3) == []
    entry = JournalEntry("id1", "alice", False, b"req", 1.0, 2.0, "open", "", "")
    await store.flush()
    records.journal_open(entry, 1.0)
    await store.flush()
    assert [e.id for e in records.load_journal()] == ["id1"]
    records.journal_close("id1", 2.0)
    await store.flush()
    assert records.load_journal() == []
    store.close()


async def test_a_bad_statement_fails_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.open()
    good = store.write("INSERT INTO toggles (channel, key, value) VALUES ('c', 'k', 'v')")
    bad = store.write("INSERT INTO no_such_table VALUES (1)")
    assert good is not None and bad is not None
    await good
    with pytest.raises(sqlite3.Error):
        await bad
    assert store.query_sync("SELECT value FROM toggles") == [("v",)]
    store.close()


WRITER = textwrap.dedent("""
    import asyncio, sys
    from rosey.store import Store
    from rosey.router.records import Records

    async def main():
        store = Store(sys.argv[1]); store.open()
        records = Records(store, "chan")
        n = 0
        while True:
            await records.turn("alice", "user", f"row {n}", float(n))
            print(n, flush=True)  # acknowledged: committed
            n += 1

    asyncio.run(main())
""")


@pytest.mark.integration
def test_acknowledged_rows_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = sqlite3.connect(db).execute("SELECT content FROM llm_conversations").fetchall()
    present = {int(r[0].split()[1]) for r in rows}
    assert set(acknowledged) <= present
    assert len(acknowledged) == 300


async def test_backup_copies_a_live_database(tmp_path: Path) -> None:
    from rosey.store.backup import backup

    store = Store(tmp_path / "live.db")
    store.open()
    records = Records(store, "chan")
    for n in range(20):
        records.turn("bob", "user", f"b{n}", float(n))
    await store.flush()
    size = backup(tmp_path / "live.db", tmp_path / "copy" / "b.db")
    store.close()
    assert size > 0
    rows = sqlite3.connect(tmp_path / "copy" / "b.db").execute(
        "SELECT COUNT(*) FROM llm_conversations").fetchone()
    assert rows == (20,)
