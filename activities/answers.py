"""The answer cache of read-only agents: a SQLite file of answers by cache key, each with
an expiry (`[answer_cache] ttl_seconds`). Keys come from `workflows.answer_cache`: agent,
prompt version, model and the normalised question. One file per worker host, like the
embedded side-effect ledger: a miss on another host only costs a model call."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from temporalio import activity

from activities.local_db import connect_wal
from workflows.contract import Activity
from workflows.control_types import AnswerLookup, AnswerLookupResult, AnswerStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    cache_key TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    expires_at REAL NOT NULL
)
"""


class AnswerCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return connect_wal(self.path)

    def get(self, key: str, now: float | None = None) -> str | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT answer FROM answers WHERE cache_key = ? AND expires_at > ?",
                (key, time.time() if now is None else now),
            ).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, answer: str, ttl_seconds: float) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?)",
                (key, answer, time.time() + ttl_seconds),
            )

    @activity.defn(name=Activity.ANSWER_CACHE_LOOKUP)
    async def lookup(self, request: AnswerLookup) -> AnswerLookupResult:
        return AnswerLookupResult(answer=await asyncio.to_thread(self.get, request.key))

    @activity.defn(name=Activity.ANSWER_CACHE_STORE)
    async def store(self, request: AnswerStore) -> None:
        await asyncio.to_thread(self.put, request.key, request.answer, request.ttl_seconds)
