"""What Temporal records of an agent run, read without a worker: a description with one
clear error for a missing run, the row `list` shows, and an ended run's state rebuilt
from its result."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from opsready.errors import OpsreadyError, RunEndedError, RunNotFoundError
from workflows.types import AgentRunResult, AgentRunState


class RunSummary(BaseModel):
    """One line of `opsready list`: what the Temporal visibility store knows of a run."""

    run_id: str
    agent: str | None
    status: str
    user: str | None
    tenant: str | None
    cost_usd: float | None
    tokens: int | None
    started_at: datetime | None
    closed_at: datetime | None


def state_of(
    agent: str, result: AgentRunResult, started_at: datetime | None = None
) -> AgentRunState:
    """The final state of an ended run, rebuilt from its result."""
    return AgentRunState(
        agent=agent,
        status=result.status,
        step=result.steps,
        usage=result.usage,
        tool_calls=result.tool_calls,
        approvals=result.approvals,
        config=result.config,
        safety_events=result.safety_events,
        output=result.output,
        reason=result.reason,
        stop_reason=result.stop_reason,
        started_at=started_at,
    )


async def describe_workflow(
    temporal: Client, workflow_id: str, workflow_type: str, noun: str, kind: str
) -> WorkflowExecutionDescription:
    """Describe `workflow_id`; one clear error when it does not exist or is another type."""
    try:
        description = await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise RunNotFoundError(
                f"no {noun} {workflow_id!r} in namespace {temporal.namespace}"
            ) from None
        raise OpsreadyError(f"cannot read {workflow_id}: {err.message}") from None
    if description.workflow_type != workflow_type:
        raise RunNotFoundError(f"{workflow_id!r} is a {description.workflow_type}, not {kind}")
    return description


def require_running(status: WorkflowExecutionStatus | None, workflow_id: str) -> None:
    if status is not WorkflowExecutionStatus.RUNNING:
        ended = status.name.lower() if status else "unknown"
        raise RunEndedError(f"{workflow_id} has already ended ({ended})")
