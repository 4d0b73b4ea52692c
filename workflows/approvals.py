"""Human approvals in workflows: the gate every approval goes through, and `AgentRun`'s book.

`ApprovalGate` is the shape of every approval (ask, notify, wait, escalate once, fail
closed), shared by `AgentRun` (a risky tool call) and `CanaryRollout` (the step to 100%).
`ApprovalBook` keeps one run's pending requests, the decisions that arrive and the audit,
for both the `approval_decision` signal and the `decide` update, so the two accept exactly
the same decisions. Deterministic (workflow code).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ApprovalRound:
    """Who is asked, and how long the gate waits for them."""

    recipients: list[str]
    timeout_seconds: float


# Tell a round's recipients (an activity); True for the escalation round.
Notify = Callable[[list[str], bool], Awaitable[None]]


class ApprovalGate:
    """Ask, notify, wait, escalate once, fail closed.

    The caller says how to ask (record the request where the `state` query and the UI show
    it), how to notify (none: the approvers watch the workflow) and when a decision is in
    (`is_decided`, which may also be true for an abort that ends the wait). `run` returns
    whether a decision came in time; without one the action is not taken: fail closed.
    """

    def __init__(
        self,
        is_decided: Callable[[], bool],
        *,
        ask: Callable[[], None],
        notify: Notify | None = None,
        on_escalate: Callable[[], None] | None = None,
    ) -> None:
        self._is_decided = is_decided
        self._ask = ask
        self._notify = notify
        self._on_escalate = on_escalate

    async def run(self, first: ApprovalRound, escalation: ApprovalRound | None = None) -> bool:
        """Ask and wait for `first`; when nobody decided, escalate once to `escalation`."""
        self._ask()
        if await self._round(first, is_escalation=False):
            return True
        if escalation is None:
            return False
        if self._on_escalate is not None:
            self._on_escalate()
        return await self._round(escalation, is_escalation=True)

    async def _round(self, round_: ApprovalRound, *, is_escalation: bool) -> bool:
        if self._notify is not None:
            await self._notify(round_.recipients, is_escalation)
        # The label shows on the timer in the UI's event history (else "1 (1d)").
        label = "escalation timeout" if is_escalation else "approval timeout"
        try:
            await workflow.wait_condition(
                self._is_decided, timeout=round_.timeout_seconds, timeout_summary=label
            )
        except TimeoutError:
            return False
        return True


class ApprovalBook:
    def __init__(self, state: AgentRunState, requester: str | None) -> None:
        self._state = state
        self._requester = requester
        self._decisions: dict[str, ApprovalDecision] = {}

    def is_pending(self, request_id: str) -> bool:
        return any(p.request_id == request_id for p in self._state.pending_approvals)

    def is_decided(self, request_id: str) -> bool:
        return request_id in self._decisions

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
