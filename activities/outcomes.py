"""Run outcomes: one host's record in a SQLite file, and the run-level metrics (runs by
status, duration, steps, cost, approvals, safety events).

The SLO monitor and canary gates read Temporal visibility, which every worker shares
(opsready/slo/source.py); this store only sees the runs of the workers on its host, so it
stays as the embedded record of a laptop (and a `CohortSource` for tests). Lean runs hand
their outcome over through the worker's recorder (workers/outcome_recorder.py), redacted as
their memo shows it; older runs through the `record_outcome` activity.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from temporalio import activity

from opsready.telemetry import Telemetry
from workflows.contract import Activity
from workflows.payloads import RunOutcome
from workflows.rollout_types import Cohort, CohortStats
from workflows.types import RunStatus

log = structlog.get_logger("opsready.run")

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
    def __init__(self, path: Path, telemetry: Telemetry | None = None) -> None:
        self.path = path
        self._telemetry = telemetry or Telemetry.create(span_processors=[], metric_readers=[])
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outcomes")
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

    def stats(self, cohort: Cohort) -> CohortStats:
        """Health numbers of the outcomes `cohort` selects; shadow runs never count.

        `ended_at` is compared as text in SQL, so that pre-filter starts a day early (any
        UTC offset) and the exact selection is made on the parsed outcomes."""
        query = "SELECT body FROM outcomes WHERE ended_at >= ?"
        params = [(_utc(cohort.since) - timedelta(days=1)).isoformat()]
        if cohort.agent:
            query += " AND agent = ?"
            params.append(cohort.agent)
        with sqlite3.connect(self.path, timeout=30) as db:
            rows = db.execute(query, params).fetchall()
        outcomes = (RunOutcome.model_validate_json(row[0]) for row in rows)
        return _cohort_stats([o for o in outcomes if _in_cohort(cohort, o)])

    async def cohort_stats(self, cohort: Cohort) -> CohortStats:
        return await asyncio.to_thread(self.stats, cohort)

    @activity.defn(name=Activity.RECORD_OUTCOME)
    async def record_outcome(self, outcome: RunOutcome) -> None:
        """Runs recorded before the `lean-run` patch call this at their end."""
        await asyncio.to_thread(self._write, outcome)
        if activity.info().attempt == 1:  # a retry after a lost reply must not count twice
            self._measure(outcome)
            self._log(outcome)

    def record_finished(self, outcome: RunOutcome) -> None:
        """A run's outcome as its last memo upsert carries it (workers.outcome_recorder):
        the metrics now, the row by a writer thread. Never blocks on the database: the
        caller is the run's workflow task."""
        self._measure(outcome)
        self._writer.submit(self._write, outcome)

    def _measure(self, outcome: RunOutcome) -> None:
        """Run-level metrics, once per run: status, latency, steps, cost, approvals, safety."""
        t = self._telemetry
        labels = t.attributes(
            {
                "opsready.agent": outcome.agent,
                "opsready.variant": outcome.variant,
                "opsready.build_id": outcome.build_id,
            }
        )
        m = t.instruments
        seconds = (outcome.ended_at - outcome.started_at).total_seconds()
        m.runs.add(1, {**labels, "status": outcome.status.value})
        m.run_duration.record(seconds, {**labels, "status": outcome.status.value})
        m.run_steps.record(outcome.steps, labels)
        m.run_cost.record(outcome.usage.cost_usd, labels)
        if outcome.status is RunStatus.COMPLETED:
            m.successful_run_cost.record(outcome.usage.cost_usd, labels)
        for approval in outcome.approvals:
            m.approvals.add(1, {**labels, "event": approval.outcome})
            wait = (approval.decided_at - approval.requested_at).total_seconds()
            m.approval_wait.record(wait, {**labels, "outcome": approval.outcome})
        for kind in outcome.safety_kinds:
            m.safety_events.add(1, {**labels, "kind": kind})

    def _log(self, outcome: RunOutcome) -> None:
        seconds = (outcome.ended_at - outcome.started_at).total_seconds()
        log.info(
            "run ended",
            status=outcome.status.value,
            stop_reason=outcome.stop_reason.value if outcome.stop_reason else None,
            steps=outcome.steps,
            input_tokens=outcome.usage.input_tokens,
            output_tokens=outcome.usage.output_tokens,
            cost_usd=outcome.usage.cost_usd,
            duration_s=round(seconds, 3),
            approvals=[a.outcome for a in outcome.approvals],
            safety_events=outcome.safety_kinds,
        )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _in_cohort(cohort: Cohort, outcome: RunOutcome) -> bool:
    if outcome.is_shadow or _utc(outcome.ended_at) < _utc(cohort.since):
        return False
    if cohort.agent is not None and outcome.agent != cohort.agent:
        return False
    if cohort.build_id is not None and outcome.build_id != cohort.build_id:
        return False
    if cohort.exclude_build_id is not None and outcome.build_id == cohort.exclude_build_id:
        return False
    if cohort.flag is None:
        return True
    # A run that never evaluated the flag belongs to neither side of its rollout.
    variation = outcome.flag_variations.get(cohort.flag)
    if variation is None:
        return False
    if cohort.variation is not None and variation != cohort.variation:
        return False
    return cohort.exclude_variation is None or variation != cohort.exclude_variation


def _cohort_stats(outcomes: list[RunOutcome]) -> CohortStats:
    if not outcomes:
        return CohortStats()
    runs = len(outcomes)
    successes = sum(1 for o in outcomes if o.status is RunStatus.COMPLETED)
    cost = sum(o.usage.cost_usd for o in outcomes)
    return CohortStats(
        runs=runs,
        successes=successes,
        success_rate=successes / runs,
        safety_events_per_run=sum(o.safety_events for o in outcomes) / runs,
        cost_per_success_usd=cost / successes if successes else None,
        median_latency_s=statistics.median(
            (o.ended_at - o.started_at).total_seconds() for o in outcomes
        ),
    )
