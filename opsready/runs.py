"""What Temporal records of an agent run, read without a worker: a description with one
clear error for a missing run, the row `list` shows, and an ended run's state rebuilt
from its result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError, RPCStatusCode

from opsready.errors import OpsreadyError, RunEndedError, RunNotFoundError
from workflows.contract import Activity, ErrorType
from workflows.payloads import CloseHaltedInput
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
        fallbacks=result.fallbacks,
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


# How Temporal closed a run that did not complete (workflows.run_end): the typed result is
# the failure's first detail, or (Canceled: Temporal keeps no details) the input of the
# run's close_halted activity.
_FAILURE_TYPES = {ErrorType.RUN_FAILED, ErrorType.RUN_TIMED_OUT, ErrorType.RUN_BUDGET_EXCEEDED}


async def run_result(
    handle: WorkflowHandle[Any, Any], data_converter: DataConverter = pydantic_data_converter
) -> AgentRunResult:
    """The typed result of an ended `AgentRun`, however Temporal closed it: Completed
    (completed, rejected), Failed (failed, timed out, over budget: the failure's details)
    or Canceled (halted: the result kept in history, read with `data_converter`, the
    client's). Waits for the run to end; raises `WorkflowFailureError` for a failure that
    carries no result."""
    try:
        value = await handle.result()
    except WorkflowFailureError as err:
        result = await _result_of_failure(handle, err, data_converter)
        if result is None:
            raise
        return result
    return value if isinstance(value, AgentRunResult) else AgentRunResult.model_validate(value)


async def _result_of_failure(
    handle: WorkflowHandle[Any, Any], err: WorkflowFailureError, data_converter: DataConverter
) -> AgentRunResult | None:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in _FAILURE_TYPES and cause.details:
        return AgentRunResult.model_validate(cause.details[0])
    if not isinstance(cause, CancelledError):
        return None
    closing = None
    async for event in handle.fetch_history_events():
        scheduled = event.activity_task_scheduled_event_attributes
        if (
            event.HasField("activity_task_scheduled_event_attributes")
            and scheduled.activity_type.name == Activity.CLOSE_HALTED
        ):
            closing = scheduled.input.payloads
    if not closing:
        return None  # cancelled before the end patch, or terminated mid-way
    [decoded] = await data_converter.decode(closing, [CloseHaltedInput])
    return decoded.result if isinstance(decoded, CloseHaltedInput) else None
