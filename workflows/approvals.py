"""The approval book of one run: pending requests, the decisions that arrive, the audit.

Used by `AgentRun` for both the `approval_decision` signal and the `decide` update, so the
two accept exactly the same decisions. Deterministic (workflow code).
"""

from __future__ import annotations

from temporalio import workflow

from workflows.payloads import RunConfig
from workflows.policy import approver_error
from workflows.types import (
    AgentRunState,
    ApprovalDecision,
    ApprovalRecord,
    HaltRequest,
    PendingApproval,
)


class ApprovalBook:
    def __init__(self, state: AgentRunState, requester: str | None) -> None:
        self._state = state
        self._requester = requester
        self._decisions: dict[str, ApprovalDecision] = {}

    def is_pending(self, request_id: str) -> bool:
        return any(p.request_id == request_id for p in self._state.pending_approvals)

    def open(self, pending: PendingApproval) -> None:
        self._state.pending_approvals.append(pending)

    def check(self, decision: ApprovalDecision, config: RunConfig | None) -> str:
        """The request id this decision is for; ValueError saying why it cannot be taken."""
        state = self._state
        if state.status.is_terminal:
            raise ValueError(f"the run has already ended ({state.status.value})")
        pending = state.pending_approvals
        request_id = decision.request_id
        if request_id is None:
            if not pending:
                raise ValueError("the run is not waiting for an approval")
            if len(pending) > 1:
                ids = ", ".join(p.request_id for p in pending)
                raise ValueError(f"{len(pending)} approvals are pending; name one of: {ids}")
            request_id = pending[0].request_id
        match = next((p for p in pending if p.request_id == request_id), None)
        if match is None or request_id in self._decisions:
            done = next((a for a in state.approvals if a.request_id == request_id), None)
            if done is not None or request_id in self._decisions:
                raise ValueError(f"approval request {request_id} was already decided")
            raise ValueError(f"unknown approval request {request_id}")
        assert config is not None  # a pending approval implies a resolved config
        problem = approver_error(
            config.approval, decision.approver, self._requester, is_escalated=match.is_escalated
        )
        if problem is not None:
            raise ValueError(problem)
        return request_id

    def accept(self, decision: ApprovalDecision, config: RunConfig | None) -> str:
        request_id = self.check(decision, config)
        self._decisions[request_id] = decision
        return request_id

    async def wait(self, pending: PendingApproval, timeout_seconds: float) -> bool:
        """Wait for a decision on `pending`; False when none came within the timeout."""
        try:
            await workflow.wait_condition(
                lambda: pending.request_id in self._decisions, timeout=timeout_seconds
            )
        except TimeoutError:
            return False
        return True

    def close(
        self, pending: PendingApproval, *, cancelled_by: HaltRequest | None = None
    ) -> ApprovalRecord:
        """Take `pending` off the list and write its outcome into the audit; `cancelled_by`
        is the halt that stopped the wait, if one did."""
        self._state.pending_approvals = [
            p for p in self._state.pending_approvals if p.request_id != pending.request_id
        ]
        decision = self._decisions.get(pending.request_id)
        if decision is not None:
            outcome = "approved" if decision.approved else "rejected"
        else:
            outcome = "halted" if cancelled_by else "timed_out"
        record = ApprovalRecord(
            request_id=pending.request_id,
            tool=pending.tool,
            step=pending.step,
            outcome=outcome,
            approver=decision.approver if decision else cancelled_by and cancelled_by.by,
            comment=decision.comment if decision else cancelled_by and cancelled_by.reason,
            requested_at=pending.requested_at,
            decided_at=workflow.now(),
            was_escalated=pending.is_escalated,
        )
        self._state.approvals.append(record)
        return record
