"""Ask a human about one thing a run wants to do: a risky tool call, a call over a quota,
a call while a circuit breaker is open, an input or answer a guardrail sent for review.

Every such question goes through the one `ApprovalGate` (ask, notify, wait, escalate once,
fail closed) and lands in the run's `pending_approvals` and audit the same way, so the
`decide` update, the `approval_decision` signal and the UI answer all of them alike.
Deterministic (workflow code).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from temporalio import workflow

from workflows.approvals import ApprovalBook, ApprovalGate, ApprovalRound
from workflows.contract import SafetyKind
from workflows.payloads import RunConfig
from workflows.run_record import RunRecord
from workflows.types import (
    ApprovalRecord,
    HaltRequest,
    PendingApproval,
    RiskTier,
    RunStatus,
    StopReason,
)


class Pager(Protocol):
    """What a question needs from its run: who halted it, and paging the approvers."""

    @property
    def halted_by(self) -> HaltRequest | None: ...

    async def notify(
        self, config: RunConfig, pending: PendingApproval, recipients: list[str], escalate: bool
    ) -> None: ...


@dataclass(frozen=True)
class Question:
    """What the approvers are asked: `subject` is the tool (or `quota`, `answer`...) the
    audit files it under; `call_id` ties it to a proposed tool call when there is one."""

    subject: str
    reason: str
    call_id: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    risk_tier: RiskTier = RiskTier.WRITE


async def ask_human(
    run: Pager, record: RunRecord, approvals: ApprovalBook, config: RunConfig, question: Question
) -> ApprovalRecord:
    """Ask the agent's approvers, then once its escalation targets; the decision, or a
    `timed_out` record when nobody decided (fail closed). A halt cancels the wait (raises)."""
    pending = PendingApproval(
        request_id=str(workflow.uuid4()),
        step=record.state.step,
        call_id=question.call_id,
        tool=question.subject,
        arguments=question.arguments,
        risk_tier=question.risk_tier,
        reason=question.reason,
        requested_at=workflow.now(),
        approvers=list(config.approval.approvers),
    )
    policy = config.approval

    def ask() -> None:
        approvals.open(pending)
        record.set_status(RunStatus.AWAITING_APPROVAL)
        workflow.logger.info(
            "approval requested",
            extra={
                "approval_event": "requested",
                "request_id": pending.request_id,
                "tool": question.subject,
                "reason": question.reason,
                "step": pending.step,
            },
        )

    def escalate() -> None:
        pending.is_escalated = True
        pending.approvers = list(dict.fromkeys([*policy.approvers, *policy.escalate_to]))
        record.safety(SafetyKind.APPROVAL_ESCALATED, f"{question.subject}: no decision, escalated")
        record.set_status(RunStatus.AWAITING_APPROVAL)

    async def notify(recipients: list[str], is_escalation: bool) -> None:
        await run.notify(config, pending, recipients, is_escalation)

    gate = ApprovalGate(
        lambda: approvals.is_decided(pending.request_id),
        ask=ask,
        notify=notify,
        on_escalate=escalate,
    )
    try:
        await gate.run(
            ApprovalRound(policy.approvers, policy.timeout_seconds),
            escalation=ApprovalRound(
                policy.escalate_to or policy.approvers, policy.escalation_timeout_seconds
            ),
        )
    except asyncio.CancelledError:
        record.log_approval(approvals.close(pending, cancelled_by=run.halted_by))
        raise
    outcome = approvals.close(pending)  # no decision: timed out, fails closed
    record.log_approval(outcome)
    if outcome.outcome == "approved":
        record.set_status(RunStatus.RUNNING)
    return outcome


def end_unapproved(record: RunRecord, outcome: ApprovalRecord, what: str) -> None:
    """End the run after a rejection or an approval timeout: `what` was not done."""
    if outcome.outcome == "rejected":
        who = f"{outcome.approver}" + (f": {outcome.comment}" if outcome.comment else "")
        record.finish(
            RunStatus.REJECTED, StopReason.APPROVAL_REJECTED, f"{what} rejected by {who}; not done"
        )
        return
    record.finish(
        RunStatus.TIMED_OUT,
        StopReason.APPROVAL_TIMEOUT,
        f"approval for {what} timed out after escalation; not done",
    )
