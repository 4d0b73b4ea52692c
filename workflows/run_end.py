"""How an `AgentRun` closes in Temporal's own terms (docs/decisions.md has the table).

`completed` and `rejected` runs complete with their result. `failed`, `timed_out` and
`budget_exceeded` runs fail: a non-retryable `ApplicationError` (type `AgentRunFailed`,
`AgentRunTimedOut`, `AgentRunBudgetExceeded`) whose first detail is the typed result, so
the UI's failure badge, `ExecutionStatus='Failed'` and the SDK's `workflow_failed` metric
see them. `halted` runs close Canceled: a Temporal cancellation request (the UI's "Request
Cancellation") is itself a halt, and a halt by signal, update or kill switch asks Temporal
to cancel the run (an activity), because only a requested cancellation closes Canceled
(raised without one, `CancelledError` fails the run). Deterministic (workflow code).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from workflows import calls
from workflows.contract import ErrorType
from workflows.payloads import CloseHaltedInput
from workflows.redaction import redact_text
from workflows.types import AgentRunResult, HaltRequest, RunStatus

# Runs that pass this patch close as the table above says; runs recorded before it
# complete whatever their status, and a cancellation request cancels them at once.
END_PATCH = "end-in-temporal-terms"
# Who a halt by Temporal cancellation is recorded as (the request's identity is not
# available to workflow code).
CANCELLED_BY = "temporal-cancellation"
FAILURE_TYPES = {
    RunStatus.FAILED: ErrorType.RUN_FAILED,
    RunStatus.TIMED_OUT: ErrorType.RUN_TIMED_OUT,
    RunStatus.BUDGET_EXCEEDED: ErrorType.RUN_BUDGET_EXCEEDED,
}
T = TypeVar("T")
# How long a halted run waits for the cancellation it asked for before it completes instead.
_CANCEL_WAIT_SECONDS = 60.0


def halt_for_cancellation() -> HaltRequest:
    """The halt a Temporal cancellation request stands for."""
    reason = (workflow.cancellation_reason() or "").strip() or "cancellation requested"
    return HaltRequest(reason=reason[:2000], by=CANCELLED_BY)


async def despite_cancellation(step: Awaitable[T], is_halt: Callable[[], bool]) -> T:
    """Finish `step` (the outcome record) even when a cancellation request arrives while it
    runs (`is_halt` takes it as a halt): the run has ended, and a cancelled activity would
    lose its record."""
    task = asyncio.ensure_future(step)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() or not is_halt():
                raise


async def close(result: AgentRunResult) -> AgentRunResult:
    """Return the result, or raise, so that Temporal closes the run as its status says."""
    error_type = FAILURE_TYPES.get(result.status)
    if error_type is not None:
        message = redact_text(result.reason or result.status.value)
        raise ApplicationError(message, result, type=error_type, non_retryable=True)
    if result.status is RunStatus.HALTED:
        await _close_cancelled(result)
    return result


async def _close_cancelled(result: AgentRunResult) -> None:
    """Close Canceled: ask for the cancellation unless one came (an activity that keeps the
    result in history), take it when it arrives, and raise. Should the request fail, the
    run completes with its result instead: a halted run never fails for this."""
    info = workflow.info()
    is_requested = workflow.cancellation_reason() is not None
    reason = redact_text(result.reason or "halted")
    closing = asyncio.ensure_future(
        calls.close_halted(
            CloseHaltedInput(
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                request_cancel=not is_requested,
                reason=reason,
                result=result,
            )
        )
    )
    # The cancellation the activity asks for may land before its result: shielded, the
    # activity is not cancelled by it and still records its completion.
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(closing)
    try:
        await closing
    except ActivityError as err:
        if workflow.cancellation_reason() is None:
            workflow.logger.warning("halted run completes: no cancel: %s", calls.cause(err))
            return
    if workflow.cancellation_reason() is None:  # asked for, not yet arrived
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await workflow.wait_condition(
                lambda: workflow.cancellation_reason() is not None,
                timeout=_CANCEL_WAIT_SECONDS,
                timeout_summary="cancellation request",
            )
        if workflow.cancellation_reason() is None:
            workflow.logger.warning("halted run completes: its cancellation never came")
            return
    raise CancelledError(reason)
