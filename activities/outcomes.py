"""Run outcomes, recorded for SLOs and canary comparisons in a SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from temporalio import activity

from workflows import activity_names as names
from workflows.types import RunOutcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    variant TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    ended_at TEXT NOT NULL
)
"""


class OutcomeStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    def _write(self, outcome: RunOutcome) -> None:
        with sqlite3.connect(self.path, timeout=30) as db:
            db.execute(
                "INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?, ?, ?)",
                (
                    outcome.run_id,
                    outcome.agent,
                    outcome.variant,
                    outcome.status.value,
                    outcome.model_dump_json(),
                    outcome.ended_at.isoformat(),
                ),
            )

    def read(self, agent: str | None = None) -> list[RunOutcome]:
        with sqlite3.connect(self.path, timeout=30) as db:
            query = "SELECT body FROM outcomes" + (" WHERE agent = ?" if agent else "")
            rows = db.execute(query + " ORDER BY ended_at", (agent,) if agent else ()).fetchall()
        return [RunOutcome.model_validate_json(row[0]) for row in rows]

    @activity.defn(name=names.RECORD_OUTCOME)
    async def record_outcome(self, outcome: RunOutcome) -> None:
        await asyncio.to_thread(self._write, outcome)
