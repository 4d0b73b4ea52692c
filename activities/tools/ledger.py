"""The side-effect ledger: a SQLite file that makes tool effects happen once per key (the
embedded default; `OPSREADY_LEDGER=temporal` shares one across hosts, `effects.py`).

`intents` records each attempt before the tool is called, `tool_results` the result
after, both by idempotency key: a retried activity returns the first result instead of
acting again, and a retry after a crash between the two knows it resumes an attempt whose
effect only the downstream system (given the same key) can tell. The demo's refunds live
here too (keyed the same way), standing in for a payments system that accepts an
idempotency key. All calls run in a thread: sqlite3 blocks.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from activities.local_db import connect_wal
from workflows.effect_types import EffectStatus

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tool_results (
    idempotency_key TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    output TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    idempotency_key TEXT PRIMARY KEY,
    refund_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    amount_usd REAL NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
    idempotency_key TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    began_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS effects (
    idempotency_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return connect_wal(self.path, synchronous_normal=True)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            db = self._connect()
            try:
                return fn(db)
            finally:
                db.close()

        return await asyncio.to_thread(work)

    async def stored_result(self, key: str) -> Any | None:
        def read(db: sqlite3.Connection) -> Any | None:
            row = db.execute(
                "SELECT output FROM tool_results WHERE idempotency_key = ?", (key,)
            ).fetchone()
            return None if row is None else json.loads(row[0])

        return await self._run(read)

    async def store_result(self, key: str, tool: str, output: Any) -> None:
        text = json.dumps(output, sort_keys=True, default=str)

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO tool_results VALUES (?, ?, ?, ?)",
                (key, tool, text, _now()),
            )

        await self._run(write)

    async def begin(self, key: str, tool: str) -> EffectStatus:
        """Record that an attempt at `key` begins; the stored result if there is one."""

        def write(db: sqlite3.Connection) -> EffectStatus:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT output FROM tool_results WHERE idempotency_key = ?", (key,)
                ).fetchone()
                result = None if row is None else json.loads(row[0])
                if result is None:
                    db.execute(
                        "INSERT INTO intents VALUES (?, ?, 1, ?) ON CONFLICT(idempotency_key) "
                        "DO UPDATE SET attempts = attempts + 1",
                        (key, tool, _now()),
                    )
                found = db.execute(
                    "SELECT attempts FROM intents WHERE idempotency_key = ?", (key,)
                ).fetchone()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return EffectStatus(
                key=key, tool=tool, attempts=found[0] if found else 0, result=result
            )

        return await self._run(write)

    async def complete(self, key: str, tool: str, result: dict[str, Any]) -> None:
        await self.store_result(key, tool, result)

    async def refund_once(
        self, key: str, refund_id: str, order_id: str, amount_usd: float, reason: str
    ) -> dict[str, Any]:
        """Create the refund for `key` unless it exists; return the refund either way."""

        def write(db: sqlite3.Connection) -> dict[str, Any]:
            db.execute(
                "INSERT OR IGNORE INTO refunds VALUES (?, ?, ?, ?, ?, ?)",
                (key, refund_id, order_id, amount_usd, reason, _now()),
            )
            row = db.execute(
                "SELECT refund_id, order_id, amount_usd, created_at FROM refunds "
                "WHERE idempotency_key = ?",
                (key,),
            ).fetchone()
            return {
                "refund_id": row[0],
                "order_id": row[1],
                "amount_usd": row[2],
                "created_at": row[3],
            }

        return await self._run(write)

    async def refunds(self) -> list[dict[str, Any]]:
        def read(db: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = db.execute(
                "SELECT idempotency_key, refund_id, order_id, amount_usd FROM refunds "
                "ORDER BY created_at"
            ).fetchall()
            return [
                {"idempotency_key": r[0], "refund_id": r[1], "order_id": r[2], "amount_usd": r[3]}
                for r in rows
            ]

        return await self._run(read)

    async def record_effect(self, key: str, kind: str, detail: str) -> None:
        """Append-only log of effects, for tests that count how often something happened."""

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO effects VALUES (?, ?, ?, ?)", (key, kind, detail, _now()))

        await self._run(write)

    async def effects(self, kind: str | None = None) -> list[tuple[str, str, str]]:
        def read(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
            query = "SELECT idempotency_key, kind, detail FROM effects"
            rows = (
                db.execute(query + " WHERE kind = ?", (kind,)) if kind else db.execute(query)
            ).fetchall()
            return [(r[0], r[1], r[2]) for r in rows]

        return await self._run(read)


def _now() -> str:
    return datetime.now(UTC).isoformat()
