"""How AgentRun closes in Temporal's own terms (workflows.run_end), and that its typed
result stays readable through the client API however it closed."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from opsready.client import OpsreadyClient
from opsready.errors import RunEndedError
from opsready.runs import run_result
from opsready.settings import Settings
from tests.fakes.scripted import answer
from tests.replay.scenarios import search_forever
from tests.workflows.conftest import Harness
from workflows.contract import Update
from workflows.types import AgentRunState, HaltRequest, RunStatus, StopReason

BIG_REFUND = "My headphones from order A-1002 arrived broken, I want a refund"


def client_of(harness: Harness) -> OpsreadyClient:
    return OpsreadyClient(harness.client, Settings(task_queue=harness.task_queue))


async def closed_status(harness: Harness, run_id: str) -> WorkflowExecutionStatus | None:
    return (await harness.client.get_workflow_handle(run_id).describe()).status


@pytest.mark.parametrize(
    ("agent", "script", "status", "error_type"),
    [
        ("tester", None, RunStatus.FAILED, "AgentRunFailed"),  # no script: the model fails
        ("tester", search_forever, RunStatus.BUDGET_EXCEEDED, "AgentRunBudgetExceeded"),
        ("support-triage", None, RunStatus.TIMED_OUT, "AgentRunTimedOut"),  # nobody approves
    ],
    ids=["failed", "budget-exceeded", "timed-out"],
)
async def test_unsuccessful_runs_close_failed_carrying_their_typed_result(
    harness: Harness, agent: str, script: object, status: RunStatus, error_type: str
) -> None:
    text = harness.script("go", script) if script else f"{BIG_REFUND} ({error_type})"
    handle = await harness.start(agent, text)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.non_retryable) == (error_type, True)
    assert await closed_status(harness, handle.id) is WorkflowExecutionStatus.FAILED
    result = await run_result(handle)
    assert result.status is status and cause.message == result.reason
    client = client_of(harness)
    assert await client.result(handle.id) == result
    assert (await client.state(handle.id)).status is status


async def test_a_halt_update_answers_once_halted_and_the_run_closes_canceled(
    harness: Harness,
) -> None:
    handle = await harness.start("support-triage", BIG_REFUND)
    await harness.wait_for_status(handle, "awaiting_approval")
    state = await handle.execute_update(
        Update.HALT, HaltRequest(reason="incident 9", by="oncall"), result_type=AgentRunState
    )
    assert (state.status, state.reason) == (RunStatus.HALTED, "halted by oncall: incident 9")
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert await closed_status(harness, handle.id) is WorkflowExecutionStatus.CANCELED
    result = await client_of(harness).result(handle.id)  # kept in history, read back
    assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.HALT)
    assert [(a.outcome, a.approver) for a in result.approvals] == [("halted", "oncall")]
    with pytest.raises(RunEndedError, match="already ended"):
        await client_of(harness).halt(handle.id, reason="again", by="oncall")


async def test_a_cancellation_request_is_a_halt(harness: Harness) -> None:
    handle = await harness.start("support-triage", BIG_REFUND)
    await harness.wait_for_status(handle, "awaiting_approval")
    await handle.cancel(reason="cancelled from the UI")
    result = await run_result(handle)
    assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.HALT)
    assert result.reason == "halted by temporal-cancellation: cancelled from the UI"
    assert [a.outcome for a in result.approvals] == ["halted"]
    assert [c.decision for c in result.tool_calls if c.tool == "refund_order"] == ["halted"]
    assert await closed_status(harness, handle.id) is WorkflowExecutionStatus.CANCELED
    refunds = [r for r in await harness.ledger.refunds() if handle.id in str(r["idempotency_key"])]
    assert refunds == []


async def test_completed_runs_still_complete_with_their_result(harness: Harness) -> None:
    handle = await harness.start("tester", harness.script("hi", lambda _: answer("hello")))
    result = await handle.result()  # no failure to unwrap
    assert (result.status, result.output) == (RunStatus.COMPLETED, "hello")
    assert await closed_status(harness, handle.id) is WorkflowExecutionStatus.COMPLETED
