"""SQLite behind one writer thread: the router is the only writer, and never on its loop.

Writes are queued (bounded) and committed in batches, one transaction per batch; each
write's future resolves after its commit, so "acknowledged" means "on disk" (WAL with
synchronous=NORMAL survives a kill -9 of the process).  Reads use their own connection
in a worker thread; WAL lets them run beside the writer.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from rosey import file_modes, metrics
from rosey.store.schema import migrate

log = logging.getLogger("rosey.store")
T = TypeVar("T")
QUEUE_MAX = 10_000
BATCH_MAX = 500

Params = Sequence[Any]


class _Write:
    __slots__ = ("future", "loop", "params", "queued_at", "sql")

    def __init__(self, sql: str, params: Params, loop: asyncio.AbstractEventLoop | None,
                 future: asyncio.Future[None] | None):
        self.sql = sql
        self.params = params
        self.loop = loop
        self.future = future
        self.queued_at = time.perf_counter()


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._queue: queue.Queue[_Write | None] = queue.Queue(maxsize=QUEUE_MAX)
        self._thread: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self.dropped = 0

    def open(self) -> None:
        """Create or migrate the database (synchronously, before the service starts).

        Its folder and files get the process umask's modes (rosey.file_modes: 0700 and
        0600 by default); files an older version left readable to others are tightened."""
        file_modes.private_dir(self.path.parent)
        file_modes.tighten(*self.files())
        conn = self._connect()
        migrate(conn)
        conn.close()
        self._thread = threading.Thread(target=self._writer, name="sqlite-writer", daemon=True)
        self._thread.start()

    def files(self) -> list[Path]:
        """The database and SQLite's WAL companions."""
        return [self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm"))]

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False,
                               isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    # ---- writes ------------------------------------------------------------

    def write(self, sql: str, params: Params = ()) -> asyncio.Future[None] | None:
        """Queue one statement; returns a future resolved at commit (None if dropped)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        try:
            self._queue.put_nowait(_Write(sql, params, loop, future))
        except queue.Full:
            metrics.DB_DROPPED.inc()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:  # a flood must not flood the log
                log.error("SQLite writer queue full: %d writes dropped so far", self.dropped)
            return None
        future.add_done_callback(_consume)
        metrics.DB_BACKLOG.set(self._queue.qsize())
        return future

    def _writer(self) -> None:
        conn = self._connect()
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < BATCH_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._commit(conn, batch)
        conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Write]) -> None:
        errors: dict[int, BaseException] = {}
        try:
            conn.execute("BEGIN")
            for index, item in enumerate(batch):
                try:
                    conn.execute(item.sql, item.params)
                except sqlite3.Error as exc:  # one bad statement must not sink the batch
                    errors[index] = exc
                    log.error("SQLite write failed: %s (%s)", exc, item.sql.split()[0:3])
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.exception("SQLite commit failed")
            errors = dict.fromkeys(range(len(batch)), exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        done = time.perf_counter()
        for index, item in enumerate(batch):
            metrics.DB_WRITE_LATENCY.observe(done - item.queued_at)
            if item.loop is not None and item.future is not None:
                item.loop.call_soon_threadsafe(_resolve, item.future, errors.get(index))
        metrics.DB_BACKLOG.set(self._queue.qsize())

    # ---- reads -------------------------------------------------------------

    def query_sync(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            if self._reader is None:
                self._reader = self._connect()
            return self._reader.execute(sql, params).fetchall()

    async def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self.query_sync, sql, params)

    def size_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            candidate = Path(f"{self.path}{suffix}")
            if candidate.exists():
                total += candidate.stat().st_size
        return total

    # ---- lifecycle ---------------------------------------------------------

    def close(self, timeout: float = 10.0) -> None:
        """Flush every queued write, then stop the writer."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        future = self.write("SELECT 1")
        if future is not None:
            await future


def _consume(future: asyncio.Future[None]) -> None:
    """Mark a failure as seen: it was logged by the writer; awaiting callers still get it."""
    if not future.cancelled():
        future.exception()


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
