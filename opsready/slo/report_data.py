"""The SLO report's data from Temporal visibility: each SLO's budget and burn rates at
evenly spaced points of the period, cost per success per interval, and the agent's
`Incident` workflows on the time axis (none when there are none)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from temporalio.client import Client
from temporalio.service import RPCError

from opsready.slo.queries import all_of, closed_runs, literal
from opsready.slo.report import (
    BurnSeries,
    ReportIncident,
    SloReportData,
    SloSeries,
    TimePoint,
)
from opsready.slo.source import ListedRun, VisibilitySliSource
from opsready.slo.status import SloStatus, slo_status
from workflows.incident_types import INCIDENT_WORKFLOW
from workflows.slo_types import DEFAULT_BURN_POLICY, Slo
from workflows.types import RunStatus

DEFAULT_POINTS = 24
RUNS_LISTED = 10_000  # for cost per success; more recent runs first
INCIDENTS_LISTED = 200
SEVERITY_ATTRIBUTE = "IncidentSeverity"  # set by the incident workflow, when it runs


async def report_data(
    client: Client,
    agent: str,
    slos: Sequence[Slo],
    *,
    days: float,
    now: datetime | None = None,
    points: int = DEFAULT_POINTS,
) -> SloReportData:
    """What `write_html_report` draws for `agent` over the last `days`."""
    end = now or datetime.now(UTC)
    start = end - timedelta(days=days)
    step = (end - start) / max(1, points - 1)
    moments = [start + step * i for i in range(points)]
    source = VisibilitySliSource(client)
    statuses, runs, incidents = await asyncio.gather(
        asyncio.gather(*(slo_status(source, agent, slos, at) for at in moments)),
        source.listed(closed_runs(agent, start, end), RUNS_LISTED),
        _incidents(client, agent, start, end),
    )
    return SloReportData(
        agent=agent,
        start=start,
        end=end,
        generated_at=end,
        slos=[_series(slo, moments, statuses) for slo in slos],
        cost_per_success=_cost_per_success(runs, moments),
        incidents=incidents,
    )


def _series(slo: Slo, moments: list[datetime], statuses: Sequence[list[SloStatus]]) -> SloSeries:
    mine = [next(s for s in at if s.slo.name == slo.name) for at in statuses]
    return SloSeries(
        slo=slo,
        budget_remaining=[
            TimePoint(at=at, value=status.budget.remaining)
            for at, status in zip(moments, mine, strict=True)
        ],
        burn_rates=[
            BurnSeries(
                window=pair,
                points=[
                    TimePoint(at=at, value=status.burns[index].rate)
                    for at, status in zip(moments, mine, strict=True)
                ],
            )
            for index, pair in enumerate(DEFAULT_BURN_POLICY)
        ],
    )


def _cost_per_success(runs: Sequence[ListedRun], moments: list[datetime]) -> list[TimePoint]:
    """Spend of every run over the completed ones, per interval ending at each point after
    the first (an interval without a completed run has no point)."""
    points = []
    for begin, end in pairwise(moments):
        inside = [r for r in runs if r.closed_at is not None and begin <= r.closed_at < end]
        completed = sum(1 for r in inside if r.status == RunStatus.COMPLETED)
        if completed:
            points.append(TimePoint(at=end, value=sum(r.cost_usd for r in inside) / completed))
    return points


async def _incidents(
    client: Client, agent: str, start: datetime, end: datetime
) -> list[ReportIncident]:
    """The agent's incidents that overlap [start, end]: `Incident` workflows by their
    `AgentName`; open ones are drawn to the end of the report."""
    query = all_of(f"WorkflowType = {literal(INCIDENT_WORKFLOW)}", f"AgentName = {literal(agent)}")
    found = []
    try:
        async for execution in client.list_workflows(query, limit=INCIDENTS_LISTED):
            if execution.start_time > end or (execution.close_time or end) < start:
                continue
            severity = next(
                (
                    str(pair.value)
                    for pair in execution.typed_search_attributes
                    if pair.key.name == SEVERITY_ATTRIBUTE
                ),
                "incident",
            )
            memo = await execution.memo()  # the incident keeps its title there
            found.append(
                ReportIncident(
                    title=str(memo.get("title") or execution.id),
                    severity=severity,
                    opened_at=execution.start_time,
                    resolved_at=execution.close_time,
                )
            )
    except RPCError:
        return []  # no incidents to draw is not a reason to refuse the report
    return sorted(found, key=lambda incident: incident.opened_at)
