"""The SLO monitor's activities: read every agent's SLIs from Temporal visibility (the
shared source), and list the runs behind an alert. Both use the worker's own client."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from temporalio import activity
from temporalio.client import Client

from opsready.agents import agent_slos, list_agents
from opsready.errors import OpsreadyError
from opsready.settings import Settings
from opsready.slo.source import VisibilitySliSource
from workflows.contract import Activity
from workflows.sli_types import (
    AffectedRuns,
    AffectedRunsInput,
    AgentSlis,
    ReadSlisInput,
    SliSnapshot,
)

log = structlog.get_logger("opsready.slo")


class SloActivities:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client  # None: the worker's own client (`activity.client()`)

    def _source(self) -> VisibilitySliSource:
        return VisibilitySliSource(self._client or activity.client())

    @activity.defn(name=Activity.SLO_READ_SLIS)
    async def read_slis(self, request: ReadSlisInput) -> SliSnapshot:
        """Every agent's SLO counts per window, its alert window against its baseline, the
        task queues' backlog and the open incidents, as of `request.as_of`."""
        source = self._source()
        names = request.agents
        if names is None:
            names = await asyncio.to_thread(list_agents, self._settings.agents_dir)
        agents = await asyncio.gather(*(self._agent(source, name, request) for name in names))
        backlogs = await asyncio.gather(*(source.backlog(q) for q in request.task_queues))
        return SliSnapshot(
            as_of=request.as_of,
            agents=list(agents),
            backlogs=[stats for queue in backlogs for stats in queue],
            open_incidents=await source.open_incident_keys(),
        )

    async def _agent(
        self, source: VisibilitySliSource, name: str, request: ReadSlisInput
    ) -> AgentSlis:
        try:
            definition, slos = await asyncio.to_thread(agent_slos, self._settings.agents_dir, name)
        except OpsreadyError as err:
            # One unreadable definition must not blind the monitor to every other agent.
            log.warning("agent not monitored", agent=name, problem=str(err))
            return AgentSlis(agent=name, problem=str(err))
        alerts, as_of = definition.alerts, request.as_of
        windows = [timedelta(seconds=s) for s in request.windows_seconds]
        counts, current, baseline = await asyncio.gather(
            source.window_counts(name, slos, windows, as_of),
            source.window_stats(name, as_of - alerts.window, as_of, request.list_cap),
            source.window_stats(
                name,
                as_of - alerts.window - alerts.baseline,
                as_of - alerts.window,
                request.list_cap,
            ),
        )
        return AgentSlis(
            agent=name,
            slos=slos,
            alerts=alerts,
            counts=counts,
            current=current,
            baseline=baseline,
        )

    @activity.defn(name=Activity.SLO_AFFECTED_RUNS)
    async def affected_runs(self, request: AffectedRunsInput) -> AffectedRuns:
        source = self._source()
        since = request.since
        if request.dedup_key is not None:
            closed = await source.incident_closed_at(request.dedup_key)
            if closed is not None and closed > since:
                since = closed
        return await source.affected_runs(request.agent, request.bad, since, request.until)
