"""`AgentRun`: one agent run as a durable workflow.

Resolve the configuration once (an activity), then loop at most `max_steps` times:
model call -> output checks -> for each tool call: policy -> approval gate -> tool call.
Halt, the run timeout and budgets end the run with their own status. Deterministic: all
I/O is in activities, time comes from `workflow.now()`, ids from `workflow.uuid4()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows import activity_names as names
from workflows import visibility
from workflows.approvals import ApprovalBook
from workflows.policy import add_usage, approval_reason, budget_breach
from workflows.types import (
    AGENT_RUN_WORKFLOW,
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalDecision,
    ApprovalRecord,
    ChatMessage,
    HaltRequest,
    ModelCallInput,
    ModelCallResult,
    NotifyApproversInput,
    PendingApproval,
    ResolveConfigInput,
    RunCheckpoint,
    RunConfig,
    RunContext,
    RunOutcome,
    RunStatus,
    SafetyEvent,
    StopReason,
    ToolCallInput,
    ToolCallRecord,
    ToolCallRequest,
    ToolCallResult,
    ToolSpec,
)

_CONFIG_RETRY = RetryPolicy(
    maximum_attempts=3,
    non_retryable_error_types=[names.UNKNOWN_AGENT, names.INVALID_AGENT_DEFINITION],
)
_MODEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=[names.MODEL_REQUEST_REJECTED, names.UNKNOWN_MODEL_PROVIDER],
)
_TOOL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[names.UNKNOWN_TOOL],
)
_SIDE_RETRY = RetryPolicy(maximum_attempts=3)
_EMPTY_ANSWER_FEEDBACK = "Your last answer was empty. Answer the user, or call a tool."


def _cause(err: ActivityError) -> str:
    cause = err.cause
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    return str(cause or err)


@workflow.defn(name=AGENT_RUN_WORKFLOW)
class AgentRunWorkflow:
    @workflow.init
    def __init__(self, request: AgentRunRequest) -> None:
        self._request = request
        checkpoint = request.checkpoint
        self._config: RunConfig | None = checkpoint.config if checkpoint else None
        self._messages: list[ChatMessage] = checkpoint.messages if checkpoint else []
        self._state = checkpoint.state if checkpoint else AgentRunState(agent=request.agent)
        self._deadline = checkpoint.deadline if checkpoint else None
        self._halt: HaltRequest | None = None
        self._approvals = ApprovalBook(self._state, requester=request.user_id)

    # --- public handlers ------------------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> AgentRunState:
        return self._state

    @workflow.signal(name="approval_decision")
    def approval_decision(self, decision: ApprovalDecision) -> None:
        try:
            self._approvals.accept(decision, self._config)
        except ValueError as err:
            # A signal cannot be refused: log it and keep it as a safety event instead.
            workflow.logger.warning("approval signal ignored: %s", err)
            self._safety("invalid_approval", str(err))

    @workflow.update(name="decide")
    async def decide(self, decision: ApprovalDecision) -> AgentRunState:
        request_id = self._approvals.accept(decision, self._config)
        await workflow.wait_condition(lambda: not self._approvals.is_pending(request_id))
        return self._state

    @decide.validator
    def _validate_decide(self, decision: ApprovalDecision) -> None:
        self._approvals.check(decision, self._config)

    @workflow.signal(name="halt")
    def halt(self, request: HaltRequest) -> None:
        if self._halt is None and not self._state.status.is_terminal:
            self._halt = request

    # --- the run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: AgentRunRequest) -> AgentRunResult:
        if self._config is None:
            self._config = await self._resolve_config()
            if self._config is None:
                return visibility.result_of(self._state)
            self._state.config = visibility.config_summary(self._config)
            self._state.started_at = workflow.now()
            self._deadline = workflow.now() + timedelta(
                seconds=self._config.budgets.run_timeout_seconds
            )
            self._messages = [
                ChatMessage(role="system", content=self._config.system_prompt),
                ChatMessage(role="user", content=request.input),
            ]
        self._set_status(RunStatus.RUNNING)

        drive = asyncio.create_task(self._drive())
        assert self._deadline is not None
        remaining = (self._deadline - workflow.now()).total_seconds()
        try:
            if remaining <= 0:
                raise TimeoutError
            await workflow.wait_condition(
                lambda: drive.done() or self._halt is not None, timeout=remaining
            )
        except TimeoutError:
            pass
        if drive.done():
            drive.result()  # re-raises continue-as-new
        else:
            drive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drive
            if self._halt is not None:
                self._finish(
                    RunStatus.HALTED,
                    StopReason.HALT,
                    f"halted by {self._halt.by}: {self._halt.reason}",
                )
            else:
                budget = self._config.budgets.run_timeout_seconds
                self._finish(
                    RunStatus.TIMED_OUT,
                    StopReason.RUN_TIMEOUT,
                    f"run timeout of {budget:g}s reached",
                )
        await self._record_outcome()
        return visibility.result_of(self._state)

    async def _drive(self) -> None:
        config = self._config
        assert config is not None
        while True:
            if self._state.step >= config.budgets.max_steps:
                self._finish(
                    RunStatus.BUDGET_EXCEEDED,
                    StopReason.MAX_STEPS,
                    f"max_steps reached: {config.budgets.max_steps} steps without a final answer",
                )
                return
            await self._maybe_continue_as_new(config)
            self._state.step += 1
            turn = await self._call_model(config)
            if turn is None:
                return
            self._messages.append(turn.message)
            breach = budget_breach(config.budgets, self._state.usage)
            if breach is not None:
                self._state.output = turn.message.content
                self._finish(RunStatus.BUDGET_EXCEEDED, *breach)
                return
            if not turn.message.tool_calls:
                answer = (turn.message.content or "").strip()
                if answer:
                    self._state.output = answer
                    self._finish(RunStatus.COMPLETED, StopReason.ANSWERED, "answered")
                    return
                self._safety("empty_answer", "the model answered with no text and no tool call")
                self._messages.append(ChatMessage(role="user", content=_EMPTY_ANSWER_FEEDBACK))
                continue
            for call in turn.message.tool_calls:
                if not await self._handle_tool_call(config, call):
                    return

    # --- steps ----------------------------------------------------------------------------

    async def _resolve_config(self) -> RunConfig | None:
        request = self._request
        try:
            config: RunConfig = await workflow.execute_activity(
                names.RESOLVE_CONFIG,
                ResolveConfigInput(
                    agent=request.agent, user_id=request.user_id, tenant_id=request.tenant_id
                ),
                result_type=RunConfig,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_CONFIG_RETRY,
                summary=f"config {request.agent}",
            )
            return config
        except ActivityError as err:
            self._finish(RunStatus.FAILED, StopReason.CONFIG_ERROR, _cause(err))
            await self._record_outcome()
            return None

    async def _call_model(self, config: RunConfig) -> ModelCallResult | None:
        step = self._state.step
        try:
            turn: ModelCallResult = await workflow.execute_activity(
                names.MODEL_CHAT,
                ModelCallInput(
                    run_id=workflow.info().workflow_id,
                    agent=config.agent,
                    step=step,
                    provider=config.provider,
                    model=config.model,
                    prompt_version=config.prompt_version,
                    messages=self._messages,
                    tools=config.tools,
                    max_output_tokens=config.max_output_tokens,
                    context=self._context(),
                    price=config.price,
                ),
                result_type=ModelCallResult,
                start_to_close_timeout=timedelta(seconds=config.model_timeout_seconds + 5),
                retry_policy=_MODEL_RETRY,
                summary=f"model {config.provider}/{config.model} (step {step})",
            )
        except ActivityError as err:
            self._finish(
                RunStatus.FAILED, StopReason.MODEL_ERROR, f"model call failed: {_cause(err)}"
            )
            return None
        self._state.usage = add_usage(
            self._state.usage, config.price, turn.input_tokens, turn.output_tokens
        )
        self._upsert_visibility()
        return turn

    async def _handle_tool_call(self, config: RunConfig, call: ToolCallRequest) -> bool:
        """Police, gate and run one tool call. False when the run ended here."""
        record = ToolCallRecord(
            step=self._state.step,
            call_id=call.id,
            tool=call.name,
            arguments=call.arguments,
            decision="invalid",
        )
        self._state.tool_calls.append(record)
        spec = config.tool(call.name)
        if call.error is not None or spec is None:
            record.error = call.error or (
                f"unknown tool {call.name!r}; available: {', '.join(t.name for t in config.tools)}"
            )
            self._safety("invalid_tool_call", f"{call.name}: {record.error}")
            self._tool_message(call, {"error": record.error})
            return True
        record.risk_tier = spec.risk_tier
        reason = approval_reason(spec, call.arguments)
        if reason is not None:
            outcome = await self._approval_gate(config, call, spec, reason)
            record.approval_request_id = outcome.request_id
            if outcome.outcome == "rejected":
                record.decision = "rejected"
                who = f"{outcome.approver}" + (f": {outcome.comment}" if outcome.comment else "")
                self._finish(
                    RunStatus.REJECTED,
                    StopReason.APPROVAL_REJECTED,
                    f"{spec.name} rejected by {who}; action not taken",
                )
                return False
            if outcome.outcome == "timed_out":
                record.decision = "approval_timed_out"
                self._finish(
                    RunStatus.TIMED_OUT,
                    StopReason.APPROVAL_TIMEOUT,
                    f"approval for {spec.name} timed out after escalation; action not taken",
                )
                return False
        decision = "approved" if reason is not None else "auto"
        result, has_failed = await self._run_tool(config, call, spec, decision)
        record.decision = "failed" if has_failed else "executed"
        record.ok, record.output, record.error = result.ok, result.output, result.error
        record.idempotency_key = self._idempotency_key(call)
        self._tool_message(call, result.output if result.ok else {"error": result.error})
        return True

    async def _approval_gate(
        self, config: RunConfig, call: ToolCallRequest, spec: ToolSpec, reason: str
    ) -> ApprovalRecord:
        pending = PendingApproval(
            request_id=str(workflow.uuid4()),
            step=self._state.step,
            call_id=call.id,
            tool=spec.name,
            arguments=call.arguments,
            risk_tier=spec.risk_tier,
            reason=reason,
            requested_at=workflow.now(),
        )
        self._approvals.open(pending)
        self._set_status(RunStatus.AWAITING_APPROVAL)
        workflow.logger.info(
            "approval requested",
            extra={
                "approval_event": "requested",
                "request_id": pending.request_id,
                "tool": spec.name,
                "reason": reason,
                "step": pending.step,
            },
        )
        try:
            await self._notify(config, pending, config.approval.approvers)
            decided = await self._approvals.wait(pending, config.approval.timeout_seconds)
            if not decided:
                pending.is_escalated = True
                self._safety("approval_escalated", f"{spec.name}: no decision, escalated")
                self._set_status(RunStatus.AWAITING_APPROVAL)
                recipients = config.approval.escalate_to or config.approval.approvers
                await self._notify(config, pending, recipients, is_escalation=True)
                await self._approvals.wait(pending, config.approval.escalation_timeout_seconds)
        except asyncio.CancelledError:
            self._log_approval(self._approvals.close(pending, cancelled_by=self._halt))
            raise
        outcome = self._approvals.close(pending)
        self._log_approval(outcome)
        if outcome.outcome == "approved":
            self._set_status(RunStatus.RUNNING)
        return outcome

    async def _run_tool(
        self, config: RunConfig, call: ToolCallRequest, spec: ToolSpec, decision: str
    ) -> tuple[ToolCallResult, bool]:
        """The tool's result, and whether the activity failed for good (retries spent)."""
        timeout = timedelta(seconds=spec.timeout_seconds)
        try:
            result: ToolCallResult = await workflow.execute_activity(
                names.TOOL_RUN,
                ToolCallInput(
                    run_id=workflow.info().workflow_id,
                    agent=config.agent,
                    step=self._state.step,
                    call_id=call.id,
                    tool=spec.name,
                    arguments=call.arguments,
                    idempotency_key=self._idempotency_key(call),
                    context=self._context(),
                    risk_tier=spec.risk_tier,
                    decision=decision,
                ),
                result_type=ToolCallResult,
                start_to_close_timeout=timeout,
                heartbeat_timeout=min(timeout, timedelta(seconds=10)),
                retry_policy=_TOOL_RETRY,
                summary=f"tool {spec.name} ({spec.risk_tier.value})",
            )
            return result, False
        except ActivityError as err:
            self._safety("tool_failed", f"{spec.name}: {_cause(err)}")
            return ToolCallResult(ok=False, error=f"tool failed: {_cause(err)}"), True

    async def _notify(
        self,
        config: RunConfig,
        pending: PendingApproval,
        recipients: list[str],
        *,
        is_escalation: bool = False,
    ) -> None:
        try:
            await workflow.execute_activity(
                names.NOTIFY_APPROVERS,
                NotifyApproversInput(
                    run_id=workflow.info().workflow_id,
                    agent=config.agent,
                    approval=pending,
                    recipients=recipients,
                    is_escalation=is_escalation,
                    context=self._context(),
                ),
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=_SIDE_RETRY,
                summary="escalate approval" if is_escalation else "notify approvers",
            )
        except ActivityError as err:
            # The approval still waits and is visible in the query; a lost page is a
            # safety event, not a reason to take the action or to end the run.
            self._safety("notification_failed", _cause(err))

    async def _maybe_continue_as_new(self, config: RunConfig) -> None:
        info = workflow.info()
        if not (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= config.budgets.continue_as_new_after_events
        ):
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self._deadline is not None
        self._state.continued_runs += 1
        checkpoint = RunCheckpoint(
            config=config, messages=self._messages, state=self._state, deadline=self._deadline
        )
        workflow.logger.info("continuing as new after %d events", info.get_current_history_length())
        workflow.continue_as_new(self._request.model_copy(update={"checkpoint": checkpoint}))

    async def _record_outcome(self) -> None:
        state = self._state
        try:
            await workflow.execute_activity(
                names.RECORD_OUTCOME,
                RunOutcome(
                    run_id=workflow.info().workflow_id,
                    agent=state.agent,
                    variant=state.config.variant if state.config else "control",
                    status=state.status,
                    stop_reason=state.stop_reason,
                    steps=state.step,
                    usage=state.usage,
                    safety_events=len(state.safety_events),
                    started_at=state.started_at or workflow.now(),
                    ended_at=workflow.now(),
                    context=self._context(),
                    safety_kinds=[event.kind for event in state.safety_events],
                    approvals=state.approvals,
                ),
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=_SIDE_RETRY,
                summary="record outcome",
            )
        except ActivityError as err:
            workflow.logger.warning("outcome not recorded: %s", _cause(err))

    # --- bookkeeping ----------------------------------------------------------------------

    def _context(self) -> RunContext:
        config = self._state.config
        return RunContext(
            user_id=self._request.user_id,
            tenant_id=self._request.tenant_id,
            variant=config.variant if config else "control",
        )

    def _idempotency_key(self, call: ToolCallRequest) -> str:
        return f"{workflow.info().workflow_id}:{self._state.step}:{call.id}"

    def _tool_message(self, call: ToolCallRequest, content: Any) -> None:
        text = content if isinstance(content, str) else _json(content)
        self._messages.append(
            ChatMessage(role="tool", tool_call_id=call.id, name=call.name, content=text)
        )

    def _log_approval(self, record: ApprovalRecord) -> None:
        workflow.logger.info(
            f"approval {record.outcome}",
            extra={
                "approval_event": record.outcome,
                "request_id": record.request_id,
                "tool": record.tool,
                "approver": record.approver,
                "comment": record.comment,
                "was_escalated": record.was_escalated,
                "wait_s": (record.decided_at - record.requested_at).total_seconds(),
                "step": record.step,
            },
        )

    def _safety(self, kind: str, detail: str) -> None:
        self._state.safety_events.append(
            SafetyEvent(kind=kind, step=self._state.step, detail=detail, at=workflow.now())
        )
        workflow.logger.warning(
            "safety event",
            extra={"kind": kind, "detail": detail, "step": self._state.step},
        )

    def _finish(self, status: RunStatus, stop_reason: StopReason, reason: str) -> None:
        self._state.stop_reason = stop_reason
        self._state.reason = reason
        self._set_status(status)
        workflow.logger.info("run ended: %s (%s)", status.value, reason)

    def _set_status(self, status: RunStatus) -> None:
        self._state.status = status
        self._upsert_visibility()
        workflow.set_current_details(visibility.current_details(self._state))

    def _upsert_visibility(self) -> None:
        workflow.upsert_search_attributes(
            visibility.search_attribute_updates(self._request, self._state)
        )
        workflow.upsert_memo(visibility.memo(self._state))


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
