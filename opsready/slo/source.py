"""The shared SLI source: Temporal's own visibility, which every worker and host of a
namespace sees alike (a dev server, a cluster, Temporal Cloud). SLO counts come from
`count_workflows` over the search attributes runs write; what a count cannot give (sums of
cost and tokens, a latency percentile, cohort medians) from listing a capped number of runs.

The choice, its costs and limits: docs/decisions.md, "SLIs from Temporal visibility".
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError, RPCStatusCode

from opsready.errors import OpsreadyError
from opsready.slo import queries
from workflows import contract
from workflows.incident_types import INCIDENT_ID_PREFIX, MAX_LINKED_IDS, incident_id
from workflows.rollout_types import Cohort, CohortStats
from workflows.sli_types import (
    TALLY_LADDER,
    AffectedRuns,
    BadRuns,
    SloWindowCounts,
    Tally,
    ladder_sum,
    tally_value,
)
from workflows.slo_types import BacklogStats, SliCounts, Slo, SloKind, WindowStats
from workflows.types import RunStatus

DEFAULT_LIST_CAP = 2000
_FAILED = frozenset(queries.FAILED)


class VisibilityError(OpsreadyError):
    """Visibility refused a query (most often: search attributes not registered)."""


class ListedRun(BaseModel):
    """One closed run as visibility lists it."""

    run_id: str
    status: str
    cost_usd: float
    tokens: int
    latency_seconds: float
    tallies: dict[Tally, int]
    closed_at: datetime | None


class VisibilitySliSource:
    """Counts and listings of closed `AgentRun`s; at most `concurrency` calls at a time,
    so a monitor tick never floods the frontend (visibility calls are rate limited on
    Temporal Cloud)."""

    def __init__(self, client: Client, *, concurrency: int = 8) -> None:
        self._client = client
        self._slots = asyncio.Semaphore(concurrency)

    # --- counts ---------------------------------------------------------------------------

    async def count(self, query: str) -> int:
        async with self._slots:
            try:
                return (await self._client.count_workflows(query)).count
            except RPCError as err:
                raise _refused(err) from None

    async def tally_sum(self, runs: str, tally: Tally) -> int:
        """The sum of `tally` over the runs `runs` selects: one count per threshold of the
        ladder, until no run reaches one."""
        reaching: list[int] = []
        for threshold in TALLY_LADDER:
            runs_reaching = await self.count(
                queries.all_of(runs, queries.reached(tally, threshold))
            )
            if runs_reaching == 0:
                break
            reaching.append(runs_reaching)
        return ladder_sum(reaching)

    async def slo_counts(self, agent: str, slo: Slo, since: datetime, until: datetime) -> SliCounts:
        return (await self.window_counts(agent, [slo], [until - since], until))[0].counts

    async def window_counts(
        self,
        agent: str,
        slos: Sequence[Slo],
        windows: Sequence[timedelta],
        as_of: datetime,
    ) -> list[SloWindowCounts]:
        """Good and total events of every SLO over every window ending at `as_of`. Counts
        several SLOs share (the completed runs, a tally) are asked for once."""
        asked: dict[str, asyncio.Task[int]] = {}

        def once(key: str, ask: Callable[[], Awaitable[int]]) -> asyncio.Task[int]:
            if key not in asked:
                asked[key] = asyncio.ensure_future(ask())
            return asked[key]

        def counted(query: str) -> asyncio.Task[int]:
            return once(query, lambda: self.count(query))

        def summed(runs: str, tally: Tally) -> asyncio.Task[int]:
            return once(f"{runs} | {tally}", lambda: self.tally_sum(runs, tally))

        async def one(slo: Slo, window: timedelta) -> SloWindowCounts:
            runs = queries.closed_runs(agent, as_of - window, as_of)
            if slo.kind in (SloKind.TOOL_ERROR_RATE, SloKind.TOOL_TIMEOUT_RATE):
                calls, timeouts, errors = await asyncio.gather(
                    summed(runs, Tally.TOOL_CALLS),
                    summed(runs, Tally.TOOL_TIMEOUTS),
                    summed(runs, Tally.TOOL_ERRORS),
                )
                counts = _tool_counts(slo.kind, calls, timeouts, errors)
            else:
                events = queries.all_of(runs, queries.slo_events(slo))
                total, bad = await asyncio.gather(
                    counted(events), counted(queries.all_of(runs, queries.slo_bad(slo)))
                )
                counts = SliCounts(good=max(0, total - bad), total=total)
            return SloWindowCounts(
                slo=slo.name, window_seconds=int(window.total_seconds()), counts=counts
            )

        try:
            return list(await asyncio.gather(*(one(s, w) for s in slos for w in windows)))
        finally:
            for task in asked.values():
                task.cancel()

    # --- listings -------------------------------------------------------------------------

    async def listed(self, query: str, cap: int = DEFAULT_LIST_CAP) -> list[ListedRun]:
        """The most recently closed runs `query` selects, at most `cap`."""
        async with self._slots:
            try:
                return [
                    _listed(execution)
                    async for execution in self._client.list_workflows(
                        query, limit=cap, page_size=min(cap, 1000)
                    )
                ]
            except RPCError as err:
                raise _refused(err) from None

    async def window_stats(
        self, agent: str, since: datetime, until: datetime, cap: int = DEFAULT_LIST_CAP
    ) -> WindowStats:
        """What happened to `agent`'s runs that ended in [since, until), for the signals
        and the automatic triggers. Above `cap` runs, the most recent `cap` stand for all:
        counts and sums are scaled to the true number of runs."""
        query = queries.closed_runs(agent, since, until)
        runs = await self.listed(query, cap)
        scale = 1.0
        if len(runs) >= cap:
            scale = await self.count(query) / len(runs)
        return _window_stats(runs, scale)

    async def cohort_stats(self, cohort: Cohort, cap: int = DEFAULT_LIST_CAP) -> CohortStats:
        """A canary cohort's health, computed as `OutcomeStore.stats` computes it, from the
        runs visibility lists (above `cap`, the most recent `cap`)."""
        return _cohort_stats(await self.listed(queries.cohort_runs(cohort), cap))

    async def affected_runs(
        self, agent: str, bad: BadRuns, since: datetime, until: datetime, cap: int = 1000
    ) -> AffectedRuns:
        """The bad runs behind an alert: their ids (newest first) and when the oldest
        listed one ended (the alert's first bad outcome, for MTTD)."""
        query = queries.all_of(queries.closed_runs(agent, since, until), queries.bad_runs(bad))
        runs = await self.listed(query, cap)
        closed = [run.closed_at for run in runs if run.closed_at is not None]
        count = len(runs) if len(runs) < cap else await self.count(query)
        return AffectedRuns(
            run_ids=[run.run_id for run in runs[:MAX_LINKED_IDS]],
            first_bad_at=min(closed, default=None),
            count=count,
        )

    async def incident_closed_at(self, dedup_key: str) -> datetime | None:
        """When the latest incident of this key closed; None if there is none or it is
        still open."""
        handle = self._client.get_workflow_handle(incident_id(dedup_key))
        async with self._slots:
            try:
                described = await handle.describe()
            except RPCError as err:
                if err.status is RPCStatusCode.NOT_FOUND:
                    return None
                raise _refused(err) from None
        return described.close_time

    async def open_incident_keys(self, cap: int = 1000) -> list[str]:
        """Dedup keys of the `Incident` workflows still running."""
        async with self._slots:
            try:
                ids = [
                    execution.id
                    async for execution in self._client.list_workflows(
                        queries.INCIDENTS_OPEN, limit=cap
                    )
                ]
            except RPCError as err:
                raise _refused(err) from None
        prefix = INCIDENT_ID_PREFIX
        return sorted(i.removeprefix(prefix) for i in ids if i.startswith(prefix))

    # --- task queues ----------------------------------------------------------------------

    async def backlog(self, task_queue: str) -> list[BacklogStats]:
        """The approximate backlog of the queue's workflow and activity tasks, as Temporal's
        task-queue statistics report it."""
        found = []
        for kind, label in (
            (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, "workflow"),
            (TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, "activity"),
        ):
            request = DescribeTaskQueueRequest(
                namespace=self._client.namespace,
                task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=kind,
                report_stats=True,
            )
            async with self._slots:
                try:
                    described = await self._client.workflow_service.describe_task_queue(request)
                except RPCError as err:
                    raise _refused(err) from None
            stats = described.stats
            found.append(
                BacklogStats(
                    task_queue=f"{task_queue} ({label} tasks)",
                    backlog=max(0, stats.approximate_backlog_count),
                    oldest_age_seconds=stats.approximate_backlog_age.ToTimedelta().total_seconds(),
                )
            )
        return found


def _refused(err: RPCError) -> VisibilityError:
    hint = (
        ": are opsready's search attributes registered? (opsready setup)"
        if "search attribute" in err.message.lower()
        else ""
    )
    return VisibilityError(f"Temporal visibility refused a query: {err.message}{hint}")


def _tool_counts(kind: SloKind, calls: int, timeouts: int, errors: int) -> SliCounts:
    """Tool SLIs count calls: errors among calls that did not time out, or timeouts among
    all calls. Sums past the ladder's exact part are lower bounds, so clamp."""
    if kind is SloKind.TOOL_TIMEOUT_RATE:
        return SliCounts(good=max(0, calls - timeouts), total=calls)
    total = max(0, calls - timeouts)
    return SliCounts(good=max(0, total - errors), total=total)


def _listed(execution: WorkflowExecution) -> ListedRun:
    attrs = execution.typed_search_attributes
    marks = list(attrs.get(contract.AGENT_TALLIES) or [])
    latency = attrs.get(contract.AGENT_LATENCY_SECONDS)
    if latency is None and execution.close_time is not None:
        latency = (execution.close_time - execution.start_time).total_seconds()
    return ListedRun(
        run_id=execution.id,
        status=attrs.get(contract.AGENT_STATUS) or "unknown",
        cost_usd=attrs.get(contract.AGENT_COST_USD) or 0.0,
        tokens=attrs.get(contract.AGENT_TOKENS) or 0,
        latency_seconds=latency or 0.0,
        tallies={tally: tally_value(marks, tally) for tally in Tally},
        closed_at=execution.close_time,
    )


def _window_stats(runs: Sequence[ListedRun], scale: float) -> WindowStats:
    def scaled(value: float) -> int:
        return round(value * scale)

    def total(tally: Tally) -> int:
        return scaled(sum(run.tallies[tally] for run in runs))

    completed = [run for run in runs if run.status == RunStatus.COMPLETED]
    return WindowStats(
        runs=scaled(len(runs)),
        completed=scaled(len(completed)),
        failed=scaled(sum(1 for run in runs if run.status in _FAILED)),
        safety_events=total(Tally.SAFETY_EVENTS),
        tool_calls=total(Tally.TOOL_CALLS),
        tool_errors=total(Tally.TOOL_ERRORS),
        tool_timeouts=total(Tally.TOOL_TIMEOUTS),
        cost_usd=sum(run.cost_usd for run in runs) * scale,
        tokens=scaled(sum(run.tokens for run in runs)),
        latency_p95_seconds=_p95([run.latency_seconds for run in completed]),
    )


def _p95(values: list[float]) -> float | None:
    """The nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _cohort_stats(runs: Sequence[ListedRun]) -> CohortStats:
    if not runs:
        return CohortStats()
    successes = sum(1 for run in runs if run.status == RunStatus.COMPLETED)
    cost = sum(run.cost_usd for run in runs)
    return CohortStats(
        runs=len(runs),
        successes=successes,
        success_rate=successes / len(runs),
        safety_events_per_run=sum(run.tallies[Tally.SAFETY_EVENTS] for run in runs) / len(runs),
        cost_per_success_usd=cost / successes if successes else None,
        median_latency_s=statistics.median(run.latency_seconds for run in runs),
    )
