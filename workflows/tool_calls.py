"""One tool call of `AgentRun`, from the model's proposal to the message the model reads back.

Allowlist and schema (checked by the model activity, fed back here), the tool's kill
switch (lean runs: checked by the tool activity, and before a human is asked about the
call), the tool policy, the approval gate when the tier or rule demands one, then the tool
activity with its idempotency key; a tool whose circuit breaker is open is switched off for
the run or sent to a human. Every step is recorded in the run's `tool_calls`.
Deterministic (workflow code).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import calls
from workflows.approvals import ApprovalBook
from workflows.contract import ErrorType, SafetyKind
from workflows.control_types import GUARDRAIL_REFUSAL
from workflows.human_review import Question, ask_human
from workflows.payloads import (
    ChatMessage,
    KillSwitchCheck,
    RunConfig,
    ToolCallInput,
    ToolCallRequest,
    ToolCallResult,
    ToolSpec,
)
from workflows.policy import is_refused_while_unknown, tool_gate
from workflows.run_record import RunRecord
from workflows.types import (
    ApprovalRecord,
    HaltRequest,
    PendingApproval,
    RunStatus,
    StopReason,
    ToolCallRecord,
    ToolDecision,
)


class RunControls(Protocol):
    """What a tool call needs from its run: halts, kill switches, and paging the approvers."""

    @property
    def halted_by(self) -> HaltRequest | None: ...

    def stop_if_halted(self) -> None: ...

    async def kill_switch(self, config: RunConfig, tool: str | None) -> KillSwitchCheck | None: ...

    async def notify(
        self, config: RunConfig, pending: PendingApproval, recipients: list[str], escalate: bool
    ) -> None: ...


class ToolCalls:
    def __init__(
        self,
        run: RunControls,
        record: RunRecord,
        approvals: ApprovalBook,
        messages: list[ChatMessage],
    ) -> None:
        self._run = run
        self._record = record
        self._approvals = approvals
        self._messages = messages
        # Tools switched off for the rest of the run (their breaker was open): why.
        self._disabled: dict[str, str] = {}

    async def handle(self, config: RunConfig, call: ToolCallRequest) -> bool:
        """Police, gate and run one tool call. False when the run ended here."""
        state = self._record.state
        record = ToolCallRecord(
            step=state.step,
            call_id=call.id,
            tool=call.name,
            arguments=call.arguments,
            decision="invalid",
        )
        state.tool_calls.append(record)
        spec = config.tool(call.name)
        if call.error is not None or spec is None:
            record.error = call.error or (
                f"unknown tool {call.name!r}; available: {', '.join(t.name for t in config.tools)}"
            )
            if record.error.startswith(GUARDRAIL_REFUSAL):
                record.decision = "denied"  # its guardrail finding is the safety event
            else:
                self._record.safety(SafetyKind.INVALID_TOOL_CALL, f"{call.name}: {record.error}")
            self._tool_message(call, {"error": record.error})
            return True
        record.risk_tier = spec.risk_tier
        if spec.name in self._disabled:
            record.decision, record.error = "denied", self._disabled[spec.name]
            self._tool_message(call, {"error": f"tool disabled: {record.error}"})
            return True
        if not self._record.is_lean:  # lean: the tool activity checks the switches itself
            goes_on = self._refused(
                call, spec, record, await self._run.kill_switch(config, spec.name)
            )
            if goes_on is not None:
                return goes_on
        gate = tool_gate(config, spec, call.arguments, call.review)
        if gate.refusal is not None:
            record.decision, record.error = "denied", gate.refusal
            kind = gate.refusal_kind or SafetyKind.TOOL_REFUSED
            self._record.safety(kind, f"{spec.name}: {gate.refusal}")
            self._tool_message(call, {"error": gate.refusal})
            return True
        if gate.approval_reason is not None:
            goes_on = await self._refused_before_asking(config, call, spec, record)
            if goes_on is not None:
                return goes_on
            record.decision = "awaiting_approval"
            try:
                outcome = await self._approval(config, call, spec, gate.approval_reason)
            except asyncio.CancelledError:
                # Halted or out of time while waiting: the action was not taken.
                halted = self._run.halted_by is not None
                record.decision = "halted" if halted else "approval_timed_out"
                raise
            record.approval_request_id = outcome.request_id
            if outcome.outcome != "approved":
                record.decision = self._end_by_approval(outcome, spec)
                return False
        decision = "approved" if gate.approval_reason is not None else "auto"
        record.decision = "running"
        try:
            result, failure = await self._run_tool(config, call, spec, decision, gate.simulate)
            if failure == ErrorType.CIRCUIT_OPEN:
                if config.breakers.on_tool_open == "escalate":
                    goes_on = await self._refused_before_asking(config, call, spec, record)
                    if goes_on is not None:
                        return goes_on
                asked = await self._breaker_open(config, call, spec, result.error or "", record)
                if asked is not None:
                    record.approval_request_id = asked.request_id
                    if asked.outcome != "approved":
                        record.decision = self._end_by_approval(asked, spec)
                        return False
                    # Approved: try it once more.
                    record.decision = "running"
                    result, failure = await self._run_tool(config, call, spec, "approved", False)
        except asyncio.CancelledError:
            record.decision = "halted"
            record.error = "halted while the tool ran; it may have finished (see its activity)"
            raise
        goes_on = self._refused(
            call, spec, record, self._record.kill_switch_seen(result.kill_switch)
        )
        if goes_on is not None:
            return goes_on
        has_failed = failure is not None
        record.decision = "failed" if has_failed else "simulated" if gate.simulate else "executed"
        record.ok, record.output, record.error = result.ok, result.output, result.error
        record.idempotency_key = self._record.idempotency_key(call)
        self._tool_message(call, result.output if result.ok else {"error": result.error})
        return True

    async def _refused_before_asking(
        self, config: RunConfig, call: ToolCallRequest, spec: ToolSpec, record: ToolCallRecord
    ) -> bool | None:
        """Lean runs, before a human is asked about a call (its approval, its open
        breaker): nobody is asked to approve a call its switch refuses (the local check)."""
        if not self._record.is_lean:
            return None  # older runs checked before the policy
        return self._refused(call, spec, record, await self._run.kill_switch(config, spec.name))

    def _refused(
        self,
        call: ToolCallRequest,
        spec: ToolSpec,
        record: ToolCallRecord,
        check: KillSwitchCheck | None,
    ) -> bool | None:
        """None when no switch refuses the call; else whether the run goes on. A tool's
        switch refuses that tool (the model is told and may answer without it); a global
        or agent switch ends the run; a switch that cannot be read refuses a destructive
        tool (fail closed) and lets the others run."""
        if check is None:
            return None
        if check.is_killed and check.scope == "tool":
            record.decision, record.error = "denied", check.reason
            self._record.safety(SafetyKind.KILL_SWITCH, f"{spec.name}: {check.reason}")
            self._tool_message(call, {"error": f"tool disabled: {check.reason}"})
            return True
        if check.is_killed:
            self._record.end_by_kill_switch(check)
            record.decision = "halted"
            return False
        if not is_refused_while_unknown(spec.risk_tier):
            return None
        refusal = f"refused while a kill switch cannot be read ({check.reason})"
        record.decision, record.error = "denied", refusal
        self._record.safety(SafetyKind.FLAGS_DEGRADED_REFUSAL, f"{spec.name}: {refusal}")
        self._tool_message(call, {"error": refusal})
        return True

    async def _approval(
        self, config: RunConfig, call: ToolCallRequest, spec: ToolSpec, reason: str
    ) -> ApprovalRecord:
        """Ask for a decision on this call: approvers, then once the escalation targets."""
        question = Question(
            subject=spec.name,
            reason=reason,
            call_id=call.id,
            arguments=call.arguments,
            risk_tier=spec.risk_tier,
        )
        return await ask_human(self._run, self._record, self._approvals, config, question)

    async def _breaker_open(
        self,
        config: RunConfig,
        call: ToolCallRequest,
        spec: ToolSpec,
        error: str,
        record: ToolCallRecord,
    ) -> ApprovalRecord | None:
        """The tool's circuit breaker is open: switch the tool off for the rest of the run
        (`[breakers] on_tool_open = "disable"`; the model is told), or ask a human whether
        to try it once more (`"escalate"`)."""
        if config.breakers.on_tool_open == "escalate":
            record.decision = "awaiting_approval"
            reason = f"{spec.name}: circuit breaker open ({error}); approve to try it again"
            return await self._approval(config, call, spec, reason)
        self._disabled[spec.name] = f"its circuit breaker is open ({error})"
        return None

    def _end_by_approval(self, outcome: ApprovalRecord, spec: ToolSpec) -> ToolDecision:
        """End the run after a rejection or an approval timeout; the tool call's decision."""
        if outcome.outcome == "rejected":
            who = f"{outcome.approver}" + (f": {outcome.comment}" if outcome.comment else "")
            self._record.finish(
                RunStatus.REJECTED,
                StopReason.APPROVAL_REJECTED,
                f"{spec.name} rejected by {who}; action not taken",
            )
            return "rejected"
        # Timed out after escalation (halts cancel the gate and never get here).
        self._record.finish(
            RunStatus.TIMED_OUT,
            StopReason.APPROVAL_TIMEOUT,
            f"approval for {spec.name} timed out after escalation; action not taken",
        )
        return "approval_timed_out"

    async def _run_tool(
        self,
        config: RunConfig,
        call: ToolCallRequest,
        spec: ToolSpec,
        decision: str,
        simulate: bool,
    ) -> tuple[ToolCallResult, str | None]:
        """The tool's result, and how the activity failed for good (retries spent): its
        error type, "" without one, None when it did not fail."""
        try:
            result = await calls.run_tool(
                ToolCallInput(
                    run_id=workflow.info().workflow_id,
                    agent=config.agent,
                    step=self._record.state.step,
                    call_id=call.id,
                    tool=spec.name,
                    arguments=call.arguments,
                    idempotency_key=self._record.idempotency_key(call),
                    context=self._record.context(),
                    risk_tier=spec.risk_tier,
                    decision=decision,
                    simulate=simulate,
                    check_kill_switch=self._record.is_lean,
                ),
                spec.timeout_seconds,
                config.activity_queues.get(f"tool:{spec.name}"),
            )
            return result, None
        except ActivityError as err:
            self._run.stop_if_halted()
            kind = calls.error_type(err)
            if kind == ErrorType.CIRCUIT_OPEN:
                self._record.safety(SafetyKind.CIRCUIT_OPEN, f"{spec.name}: {calls.cause(err)}")
            else:
                self._record.safety(SafetyKind.TOOL_FAILED, f"{spec.name}: {calls.cause(err)}")
            return ToolCallResult(ok=False, error=calls.tool_failure(err)), kind or ""

    def _tool_message(self, call: ToolCallRequest, content: Any) -> None:
        text = (
            content
            if isinstance(content, str)
            else json.dumps(content, sort_keys=True, default=str)
        )
        self._messages.append(
            ChatMessage(role="tool", tool_call_id=call.id, name=call.name, content=text)
        )
