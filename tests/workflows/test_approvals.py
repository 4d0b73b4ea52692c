"""Approval gate of AgentRun on the time-skipping server: approve, reject, escalate, halt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from opsready.runs import run_result
from tests.workflows.conftest import Harness
from workflows.contract import Signal, Update
from workflows.types import AgentRunState, ApprovalDecision, HaltRequest, RunStatus, StopReason

BIG_REFUND = "My headphones from order A-1002 arrived broken, I want a refund"
SMALL_REFUND = "My mug from order A-1001 arrived broken, please refund it"


async def refunds_for(harness: Harness, run_id: str) -> list[dict[str, object]]:
    return [
        r for r in await harness.ledger.refunds() if str(r["idempotency_key"]).startswith(run_id)
    ]


async def test_small_refund_runs_without_approval(harness: Harness) -> None:
    handle = await harness.start("support-triage", SMALL_REFUND)
    result = await run_result(handle)
    assert result.status is RunStatus.COMPLETED
    assert result.approvals == []
    refund = next(c for c in result.tool_calls if c.tool == "refund_order")
    assert refund.decision == "executed" and refund.ok
    assert len(await refunds_for(harness, handle.id)) == 1
    assert "$18.00" in (result.output or "")


async def test_refund_over_threshold_waits_and_runs_once_approved(harness: Harness) -> None:
    handle = await harness.start("support-triage", BIG_REFUND)
    waiting = await harness.wait_for_status(handle, "awaiting_approval")
    assert [p.tool for p in waiting.pending_approvals] == ["refund_order"]
    assert "over the threshold" in waiting.pending_approvals[0].reason
    assert await refunds_for(harness, handle.id) == []

    after = await handle.execute_update(
        Update.DECIDE,
        ApprovalDecision(approved=True, approver="alice", comment="damaged in transit"),
        result_type=AgentRunState,
    )
    assert after.pending_approvals == []
    result = await run_result(handle)
    assert result.status is RunStatus.COMPLETED
    [approval] = result.approvals
    assert (approval.outcome, approval.approver, approval.comment) == (
        "approved",
        "alice",
        "damaged in transit",
    )
    assert len(await refunds_for(harness, handle.id)) == 1


async def test_rejected_refund_ends_run_rejected_without_refund(harness: Harness) -> None:
    handle = await harness.start("support-triage", BIG_REFUND)
    waiting = await harness.wait_for_status(handle, "awaiting_approval")
    await handle.signal(
        Signal.APPROVAL_DECISION,
        ApprovalDecision(
            request_id=waiting.pending_approvals[0].request_id,
            approved=False,
            approver="bob",
            comment="outside policy",
        ),
    )
    result = await run_result(handle)
    assert result.status is RunStatus.REJECTED
    assert result.stop_reason is StopReason.APPROVAL_REJECTED
    assert "rejected by bob: outside policy" in (result.reason or "")
    assert result.approvals[0].outcome == "rejected"
    assert result.tool_calls[-1].decision == "rejected"
    assert await refunds_for(harness, handle.id) == []


async def test_unapproved_refund_fails_closed_after_escalation(harness: Harness) -> None:
    handle = await harness.start("support-triage", BIG_REFUND)
    # Parked first, the time-skipping server then jumps through both timeouts at once.
    await harness.wait_for_status(handle, "awaiting_approval")
    result = await run_result(handle)
    assert result.status is RunStatus.TIMED_OUT
    assert result.stop_reason is StopReason.APPROVAL_TIMEOUT
    assert "action not taken" in (result.reason or "")
    [approval] = result.approvals
    assert approval.outcome == "timed_out" and approval.was_escalated
    assert (approval.decided_at - approval.requested_at).total_seconds() == pytest.approx(
        3600 + 1800, abs=5
    )
    assert [e.kind for e in result.safety_events] == ["approval_escalated"]
    assert await refunds_for(harness, handle.id) == []


async def test_escalation_target_may_decide_only_after_escalation(harness: Harness) -> None:
    text = harness.script("refund", lambda r: _refund_then_answer(r, amount=80.0))
    handle = await harness.start("tester", text)
    await harness.wait_for_status(handle, "awaiting_approval")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            Update.DECIDE,
            ApprovalDecision(approved=True, approver="lead"),
            result_type=AgentRunState,
        )
    assert "lead may not approve" in str(refused.value.cause)
    await harness.env.sleep(timedelta(seconds=601))  # past the 600 s approval timeout
    state = await harness.wait_for(handle, lambda s: bool(s.pending_approvals[0].is_escalated))
    assert state.pending_approvals[0].is_escalated
    await handle.execute_update(
        Update.DECIDE, ApprovalDecision(approved=True, approver="lead"), result_type=AgentRunState
    )
    result = await run_result(handle)
    assert result.status is RunStatus.COMPLETED
    assert result.approvals[0].approver == "lead" and result.approvals[0].was_escalated


async def test_decide_refuses_unknown_request_and_unauthorised_approvers(harness: Harness) -> None:
    handle = await harness.start("support-triage", BIG_REFUND)  # by customer-17, the order's owner
    await harness.wait_for_status(handle, "awaiting_approval")
    cases = [
        (ApprovalDecision(approved=True, approver="mallory"), "mallory may not approve"),
        (
            ApprovalDecision(approved=True, approver="customer-17"),
            "cannot approve their own request",
        ),
        (
            ApprovalDecision(request_id="x", approved=True, approver="bob"),
            "unknown approval request",
        ),
    ]
    for decision, message in cases:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(Update.DECIDE, decision, result_type=AgentRunState)
        assert message in str(refused.value.cause)
    # A bad signal cannot be refused: it is ignored and kept as a safety event.
    await handle.signal(
        Signal.APPROVAL_DECISION, ApprovalDecision(approved=True, approver="mallory")
    )
    state = await harness.wait_for_status(handle, "awaiting_approval")
    assert [e.kind for e in state.safety_events] == ["invalid_approval"]
    assert len(state.pending_approvals) == 1
    decided = await handle.execute_update(
        Update.DECIDE, ApprovalDecision(approved=False, approver="bob"), result_type=AgentRunState
    )
    assert decided.status is RunStatus.REJECTED
    # A late decision is refused: by the validator while the run is still open, by the
    # server once it has closed (a rejected run closes in the task that took the decision).
    with pytest.raises((WorkflowUpdateFailedError, RPCError)) as stale:
        await handle.execute_update(
            Update.DECIDE,
            ApprovalDecision(approved=True, approver="bob"),
            result_type=AgentRunState,
        )
    refusal = stale.value
    if isinstance(refusal, WorkflowUpdateFailedError):
        assert "already ended" in str(refusal.cause)
    else:
        assert refusal.status is RPCStatusCode.NOT_FOUND


async def test_halt_while_waiting_for_approval_stops_the_run(harness: Harness) -> None:
    handle = await harness.start("support-triage", BIG_REFUND)
    await harness.wait_for_status(handle, "awaiting_approval")
    await handle.signal(Signal.HALT, HaltRequest(reason="incident 42", by="oncall"))
    result = await run_result(handle)
    assert result.status is RunStatus.HALTED
    assert result.reason == "halted by oncall: incident 42"
    assert result.approvals[0].outcome == "halted"
    assert result.approvals[0].approver == "oncall"
    assert result.approvals[0].comment == "incident 42"
    assert [c.decision for c in result.tool_calls if c.tool == "refund_order"] == ["halted"]
    assert await refunds_for(harness, handle.id) == []


async def test_destructive_tool_always_waits_for_approval(harness: Harness) -> None:
    from tests.fakes.scripted import answer, calls

    def script(request):  # type: ignore[no-untyped-def]
        if request.step == 1:
            return calls(1, ("close_account", {"account_id": "acct-9"}))
        return answer("closed")

    handle = await harness.start("tester", harness.script("close my account", script))
    state = await harness.wait_for_status(handle, "awaiting_approval")
    assert state.pending_approvals[0].reason == "close_account is a destructive tool"
    assert state.pending_approvals[0].risk_tier.value == "destructive"
    await handle.execute_update(
        Update.DECIDE, ApprovalDecision(approved=True, approver="bob"), result_type=AgentRunState
    )
    assert (await run_result(handle)).status is RunStatus.COMPLETED
    effects = await harness.ledger.effects("close_account")
    assert [e for e in effects if e[0].startswith(handle.id)] == [
        (f"{handle.id}:1:call_1_1", "close_account", "acct-9")
    ]


def _refund_then_answer(request, amount: float):  # type: ignore[no-untyped-def]
    from tests.fakes.scripted import answer, calls

    if request.step == 1:
        return calls(
            1, ("refund_order", {"order_id": "A-1004", "amount_usd": amount, "reason": "x"})
        )
    return answer("refunded")
