"""The SLO monitor's Temporal Schedule (`opsready slo monitor start|pause|status`): it
starts one `SloMonitor` workflow every interval on the agents' task queue.

A pass that is still running when the next is due is skipped (overlap SKIP), and passes
missed while the server was down are not caught up (catch-up window: one interval), so a
restart never floods the namespace with stale passes.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode

from opsready.errors import OpsreadyError
from workflows.contract import SLO_MONITOR_SCHEDULE, SLO_MONITOR_WORKFLOW
from workflows.slo_monitor_types import SLO_MONITOR_ID, SloMonitorInput, SloMonitorReport

PASS_TIMEOUT = timedelta(minutes=5)
RECENT_SHOWN = 5


class RecentPass(BaseModel):
    workflow_id: str
    started_at: datetime
    status: str  # the workflow's status: running, completed, failed, ...
    report: SloMonitorReport | None = None  # when it completed


class MonitorState(BaseModel):
    """The Schedule as `opsready slo monitor status` shows it."""

    schedule_id: str = SLO_MONITOR_SCHEDULE
    exists: bool
    paused: bool = False
    note: str | None = None
    every_seconds: float | None = None
    task_queue: str | None = None
    agents: list[str] | None = None  # None: every agent
    next_runs: list[datetime] = Field(default_factory=list)
    recent: list[RecentPass] = Field(default_factory=list)


def monitor_schedule(
    task_queue: str, every: timedelta, agents: list[str] | None, note: str | None = None
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SLO_MONITOR_WORKFLOW,
            SloMonitorInput(agents=agents, task_queues=[task_queue]),
            id=SLO_MONITOR_ID,
            task_queue=task_queue,
            execution_timeout=PASS_TIMEOUT,
            static_summary="SLO monitor pass: burn rates, signals, triggers, backlog",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=every),
        state=ScheduleState(note=note),
    )


async def start_monitor(
    client: Client, *, task_queue: str, every: timedelta, agents: list[str] | None = None
) -> MonitorState:
    """Create the Schedule (its first pass runs now), or update it and unpause it."""
    schedule = monitor_schedule(task_queue, every, agents, note="started by opsready slo")
    try:
        await client.create_schedule(SLO_MONITOR_SCHEDULE, schedule, trigger_immediately=True)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(SLO_MONITOR_SCHEDULE)

        def updated(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await _call(handle.update(updated))
        await _call(handle.unpause(note="started by opsready slo"))
    except RPCError as err:
        raise OpsreadyError(f"cannot create the SLO monitor schedule: {err.message}") from None
    return await monitor_state(client)


async def pause_monitor(client: Client, reason: str) -> MonitorState:
    handle = client.get_schedule_handle(SLO_MONITOR_SCHEDULE)
    await _call(handle.pause(note=reason))
    return await monitor_state(client)


async def resume_monitor(client: Client, note: str | None) -> MonitorState:
    """Unpause it, as it was before a pause (its note back)."""
    handle = client.get_schedule_handle(SLO_MONITOR_SCHEDULE)
    await _call(handle.unpause(note=note or "resumed"))
    return await monitor_state(client)


async def monitor_state(client: Client, recent: int = RECENT_SHOWN) -> MonitorState:
    try:
        described = await client.get_schedule_handle(SLO_MONITOR_SCHEDULE).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return MonitorState(exists=False)
        raise OpsreadyError(f"cannot read the SLO monitor schedule: {err.message}") from None
    return MonitorState(
        exists=True,
        paused=described.schedule.state.paused,
        note=described.schedule.state.note,
        every_seconds=_every(described),
        task_queue=_action(described).task_queue,
        agents=await _agents(described),
        next_runs=list(described.info.next_action_times),
        recent=[await _pass(client, r) for r in described.info.recent_actions[-recent:]],
    )


async def _call(operation: Awaitable[None]) -> None:
    try:
        await operation
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise OpsreadyError(
                "no SLO monitor schedule yet: start it with `opsready slo monitor start`"
            ) from None
        raise OpsreadyError(f"SLO monitor schedule: {err.message}") from None


def _action(described: ScheduleDescription) -> ScheduleActionStartWorkflow:
    action = described.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow):
        raise OpsreadyError(f"{SLO_MONITOR_SCHEDULE} does not start workflows: not opsready's")
    return action


def _every(described: ScheduleDescription) -> float | None:
    intervals = described.schedule.spec.intervals
    return intervals[0].every.total_seconds() if intervals else None


async def _agents(described: ScheduleDescription) -> list[str] | None:
    """The agents of the stored input (a described action holds payloads, not values)."""
    args = _action(described).args
    if not args or not isinstance(args[0], Payload):
        return None
    [request] = await described.data_converter.decode([args[0]], [SloMonitorInput])
    return request.agents if isinstance(request, SloMonitorInput) else None


async def _pass(client: Client, result: ScheduleActionResult) -> RecentPass:
    action, started_at = result.action, result.started_at
    if not isinstance(action, ScheduleActionExecutionStartWorkflow):
        return RecentPass(workflow_id="?", started_at=started_at, status="unknown")
    handle = client.get_workflow_handle(
        action.workflow_id, run_id=action.first_execution_run_id, result_type=SloMonitorReport
    )
    try:
        status = (await handle.describe()).status
    except RPCError:
        return RecentPass(workflow_id=action.workflow_id, started_at=started_at, status="gone")
    report = await handle.result() if status is WorkflowExecutionStatus.COMPLETED else None
    return RecentPass(
        workflow_id=action.workflow_id,
        started_at=started_at,
        status=status.name.lower() if status else "unknown",
        report=report,
    )
