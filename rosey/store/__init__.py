"""Persistence: SQLite (WAL) behind a writer thread; the router is its only writer."""

from rosey.store.db import Store

__all__ = ["Store"]
