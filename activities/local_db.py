"""The per-host SQLite files of a worker (side-effect ledger, answer cache): one way to open
them, in autocommit with a write-ahead log so concurrent activities do not block readers."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect_wal(path: Path, *, synchronous_normal: bool = False) -> sqlite3.Connection:
    """A connection to `path` (autocommit, WAL, 30 s busy timeout). `synchronous_normal`
    trades the last commits before a power loss for fewer fsyncs (safe under WAL)."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    if synchronous_normal:
        db.execute("PRAGMA synchronous=NORMAL")
    return db
