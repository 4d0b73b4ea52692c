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
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows import calls, shadow, visibility
from workflows.approvals import ApprovalBook
from workflows.contract import AGENT_RUN_WORKFLOW, Query, SafetyKind, Signal, Update
from workflows.policy import add_usage, budget_breach, tool_gate
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalDecision,
    ApprovalRecord,
    ChatMessage,
    ComparedRun,
    HaltRequest,
    KillSwitchCheck,
    KillSwitchInput,
    ModelCallInput,
    ModelCallResult,
    ModelPrice,
    NotifyApproversInput,
    PendingApproval,
    ResolveConfigInput,
    RunCheckpoint,
    RunConfig,
    RunContext,
    RunStatus,
    SafetyEvent,
    StopReason,
    ToolCallInput,
    ToolCallRecord,
    ToolCallRequest,
    ToolCallResult,
    ToolDecision,
    ToolSpec,
)

# Patch ids: a change to the commands AgentRun emits ships behind one (see README,
# "Changing workflow code"), so runs recorded before it still replay.
KILL_SWITCH_PATCH = "kill-switch-checks"
HALT_PATCH = "halt-stops-at-once"
_EMPTY_ANSWER_FEEDBACK = "Your last answer was empty. Answer the user, or call a tool."


@workflow.defn(name=AGENT_RUN_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
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
        self._production: ComparedRun | None = None  # a shadow run's production twin

    # --- public handlers ------------------------------------------------------------------

    @workflow.query(name=Query.STATE)
    def state(self) -> AgentRunState:
        return self._state

    @workflow.signal(name=Signal.APPROVAL_DECISION)
    def approval_decision(self, decision: ApprovalDecision) -> None:
        try:
            self._approvals.accept(decision, self._config)
        except ValueError as err:
            # A signal cannot be refused: log it and keep it as a safety event instead.
            workflow.logger.warning("approval signal ignored: %s", err)
            self._safety(SafetyKind.INVALID_APPROVAL, str(err))

    @workflow.update(name=Update.DECIDE)
    async def decide(self, decision: ApprovalDecision) -> AgentRunState:
        request_id = self._approvals.accept(decision, self._config)
        await workflow.wait_condition(lambda: not self._approvals.is_pending(request_id))
        return self._state

    @decide.validator
    def _validate_decide(self, decision: ApprovalDecision) -> None:
        self._approvals.check(decision, self._config)

    @workflow.signal(name=Signal.HALT)
    def halt(self, request: HaltRequest) -> None:
        if self._halt is None and not self._state.status.is_terminal:
            self._halt = request

    @workflow.signal(name=Signal.PRODUCTION_RESULT)
    def production_result(self, summary: ComparedRun) -> None:
        """Sent by a production run to its shadow twin when it ends."""
        if self._request.shadow_of is not None:
            self._production = summary

    # --- the run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: AgentRunRequest) -> AgentRunResult:
        if self._config is None:
            self._config = await self._resolve_config()
            if self._config is None:
                return visibility.result_of(self._state)
            self._state.config = visibility.config_summary(self._config, _build_id())
            self._state.started_at = workflow.now()
            if self._config.flags_degraded:
                self._safety(SafetyKind.FLAGS_DEGRADED, self._config.flags_degraded)
            self._deadline = workflow.now() + timedelta(
                seconds=self._config.budgets.run_timeout_seconds
            )
            self._messages = [
                ChatMessage(role="system", content=self._config.system_prompt),
                ChatMessage(role="user", content=request.input),
            ]
        self._set_status(RunStatus.RUNNING)
        if self._config.shadow is not None and self._state.shadow_run_id is None:
            await self._start_shadow(self._config)

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
        await self._after_end()
        await self._record_outcome()
        return visibility.result_of(self._state)

    async def _drive(self) -> None:
        config = self._config
        assert config is not None
        while True:
            self._stop_if_halted()
            if self._state.step >= config.budgets.max_steps:
                self._finish(
                    RunStatus.BUDGET_EXCEEDED,
                    StopReason.MAX_STEPS,
                    f"max_steps reached: {config.budgets.max_steps} steps without a final answer",
                )
                return
            await self._maybe_continue_as_new(config)
            killed = await self._kill_switch(config)
            if killed is not None:
                self._end_by_kill_switch(killed)
                return
            self._state.step += 1
            turn = await self._call_model(config)
            if turn is None:
                return
            self._stop_if_halted()
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
                self._safety(
                    SafetyKind.EMPTY_ANSWER, "the model answered with no text and no tool call"
                )
                self._messages.append(ChatMessage(role="user", content=_EMPTY_ANSWER_FEEDBACK))
                continue
            for call in turn.message.tool_calls:
                if not await self._handle_tool_call(config, call):
                    return
                self._stop_if_halted()

    # --- steps ----------------------------------------------------------------------------

    async def _resolve_config(self) -> RunConfig | None:
        request = self._request
        try:
            return await calls.resolve_config(
                ResolveConfigInput(
                    agent=request.agent,
                    user_id=request.user_id,
                    tenant_id=request.tenant_id,
                    run_id=workflow.info().workflow_id,
                    shadow=request.shadow_of.candidate if request.shadow_of else None,
                )
            )
        except ActivityError as err:
            self._finish(RunStatus.FAILED, StopReason.CONFIG_ERROR, calls.cause(err))
            await self._record_outcome()
            return None

    async def _call_model(self, config: RunConfig) -> ModelCallResult | None:
        model, price = f"{config.provider}/{config.model}", config.price
        try:
            turn = await self._model_activity(config, model, price)
        except ActivityError as err:
            self._stop_if_halted()  # a halt's cancellation arrives as an activity error
            if not (config.fallback_model and config.fallback_price):
                self._finish(
                    RunStatus.FAILED,
                    StopReason.MODEL_ERROR,
                    f"model call failed: {calls.cause(err)}",
                )
                return None
            self._safety(
                SafetyKind.MODEL_FALLBACK, f"{model} failed ({calls.cause(err)}); trying fallback"
            )
            model, price = config.fallback_model, config.fallback_price
            try:
                turn = await self._model_activity(config, model, price)
            except ActivityError as fallback_err:
                self._stop_if_halted()
                self._finish(
                    RunStatus.FAILED,
                    StopReason.MODEL_ERROR,
                    f"model call failed: {calls.cause(err)}; fallback {model}: {calls.cause(fallback_err)}",
                )
                return None
        self._state.usage = add_usage(
            self._state.usage, price, turn.input_tokens, turn.output_tokens
        )
        self._upsert_visibility()
        return turn

    async def _model_activity(
        self, config: RunConfig, model: str, price: ModelPrice
    ) -> ModelCallResult:
        provider, model_name = model.split("/", 1)
        return await calls.chat(
            ModelCallInput(
                run_id=workflow.info().workflow_id,
                agent=config.agent,
                step=self._state.step,
                provider=provider,
                model=model_name,
                prompt_version=config.prompt_version,
                messages=self._messages,
                tools=config.tools,
                max_output_tokens=config.max_output_tokens,
                context=self._context(),
                price=price,
            ),
            config.model_timeout_seconds,
        )

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
            self._safety(SafetyKind.INVALID_TOOL_CALL, f"{call.name}: {record.error}")
            self._tool_message(call, {"error": record.error})
            return True
        record.risk_tier = spec.risk_tier
        killed = await self._kill_switch(config, spec.name)
        if killed is not None and killed.scope == "tool":
            # A tool's switch refuses that tool; the model is told and may answer without it.
            record.decision, record.error = "denied", killed.reason
            self._safety(SafetyKind.KILL_SWITCH, f"{spec.name}: {killed.reason}")
            self._tool_message(call, {"error": f"tool disabled: {killed.reason}"})
            return True
        if killed is not None:
            self._end_by_kill_switch(killed)
            record.decision = "halted"
            return False
        gate = tool_gate(config, spec, call.arguments)
        if gate.refusal is not None:
            record.decision, record.error = "denied", gate.refusal
            self._safety(
                gate.refusal_kind or SafetyKind.TOOL_REFUSED, f"{spec.name}: {gate.refusal}"
            )
            self._tool_message(call, {"error": gate.refusal})
            return True
        if gate.approval_reason is not None:
            try:
                outcome = await self._approval_gate(config, call, spec, gate.approval_reason)
            except asyncio.CancelledError:
                # Halted or out of time while waiting: the action was not taken.
                record.decision = "halted" if self._halt is not None else "approval_timed_out"
                raise
            record.approval_request_id = outcome.request_id
            if outcome.outcome != "approved":
                record.decision = self._end_by_approval(outcome, spec)
                return False
        decision = "approved" if gate.approval_reason is not None else "auto"
        try:
            result, has_failed = await self._run_tool(config, call, spec, decision, gate.simulate)
        except asyncio.CancelledError:
            record.decision = "halted"
            record.error = "halted while the tool ran; it may have finished (see its activity)"
            raise
        record.decision = "failed" if has_failed else "simulated" if gate.simulate else "executed"
        record.ok, record.output, record.error = result.ok, result.output, result.error
        record.idempotency_key = self._idempotency_key(call)
        self._tool_message(call, result.output if result.ok else {"error": result.error})
        return True

    def _end_by_approval(self, outcome: ApprovalRecord, spec: ToolSpec) -> ToolDecision:
        """End the run after a rejection or an approval timeout; the tool call's decision."""
        if outcome.outcome == "rejected":
            who = f"{outcome.approver}" + (f": {outcome.comment}" if outcome.comment else "")
            self._finish(
                RunStatus.REJECTED,
                StopReason.APPROVAL_REJECTED,
                f"{spec.name} rejected by {who}; action not taken",
            )
            return "rejected"
        # Timed out after escalation (halts cancel the gate and never get here).
        self._finish(
            RunStatus.TIMED_OUT,
            StopReason.APPROVAL_TIMEOUT,
            f"approval for {spec.name} timed out after escalation; action not taken",
        )
        return "approval_timed_out"

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
                self._safety(SafetyKind.APPROVAL_ESCALATED, f"{spec.name}: no decision, escalated")
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
        self,
        config: RunConfig,
        call: ToolCallRequest,
        spec: ToolSpec,
        decision: str,
        simulate: bool = False,
    ) -> tuple[ToolCallResult, bool]:
        """The tool's result, and whether the activity failed for good (retries spent)."""
        try:
            result = await calls.run_tool(
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
                    simulate=simulate,
                ),
                spec.timeout_seconds,
            )
            return result, False
        except ActivityError as err:
            self._stop_if_halted()
            self._safety(SafetyKind.TOOL_FAILED, f"{spec.name}: {calls.cause(err)}")
            return ToolCallResult(ok=False, error=calls.tool_failure(err)), True

    async def _notify(
        self,
        config: RunConfig,
        pending: PendingApproval,
        recipients: list[str],
        *,
        is_escalation: bool = False,
    ) -> None:
        try:
            await calls.notify_approvers(
                NotifyApproversInput(
                    run_id=workflow.info().workflow_id,
                    agent=config.agent,
                    approval=pending,
                    recipients=recipients,
                    is_escalation=is_escalation,
                    context=self._context(),
                )
            )
        except ActivityError as err:
            self._stop_if_halted()
            # The approval still waits and is visible in the query; a lost page is a
            # safety event, not a reason to take the action or to end the run.
            self._safety(SafetyKind.NOTIFICATION_FAILED, calls.cause(err))
        # A halt that came with the notification's result must not leave the run waiting.
        self._stop_if_halted()

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
        outcome = visibility.outcome_of(
            workflow.info().workflow_id, self._request, self._state, self._context(), workflow.now()
        )
        try:
            await calls.record_outcome(outcome)
        except ActivityError as err:
            workflow.logger.warning("outcome not recorded: %s", calls.cause(err))

    # --- kill switches and shadow runs -----------------------------------------------------

    async def _kill_switch(
        self, config: RunConfig, tool: str | None = None
    ) -> KillSwitchCheck | None:
        """The kill switch that covers this call, if one is on (checked before every call)."""
        if not workflow.patched(KILL_SWITCH_PATCH):
            return None
        try:
            check = await calls.check_kill_switch(
                KillSwitchInput(agent=config.agent, tool=tool, context=self._context())
            )
        except ActivityError as err:
            self._stop_if_halted()
            # Flags unreachable: the batch halt by the flag listener is the backstop.
            self._safety(SafetyKind.KILL_SWITCH_UNCHECKED, calls.cause(err))
            return None
        self._stop_if_halted()
        return check if check.is_killed else None

    def _stop_if_halted(self) -> None:
        """Stop the drive now if a halt came in. `drive.cancel()` alone is not enough: when
        the halt and an activity's result (or its cancellation, as an ActivityError) arrive
        together, the SDK hands the drive that result and the cancellation is spent."""
        if self._halt is not None and workflow.patched(HALT_PATCH):
            raise asyncio.CancelledError

    def _end_by_kill_switch(self, check: KillSwitchCheck) -> None:
        verb = "refused" if self._state.step == 0 else "halted"
        self._safety(SafetyKind.KILL_SWITCH, check.reason or "kill switch on")
        self._finish(RunStatus.HALTED, StopReason.KILL_SWITCH, f"{verb}: {check.reason}")

    async def _start_shadow(self, config: RunConfig) -> None:
        assert config.shadow is not None
        try:
            self._state.shadow_run_id = await shadow.start_twin(self._request, config.shadow)
        except (ChildWorkflowError, ApplicationError) as err:
            self._safety(SafetyKind.SHADOW_NOT_STARTED, str(err))

    async def _after_end(self) -> None:
        """Production: tell the shadow twin how this run ended. Shadow: compare with it."""
        summary = visibility.compared_run(workflow.info().workflow_id, self._state, workflow.now())
        if self._state.shadow_run_id is not None:
            await shadow.tell_twin(self._state.shadow_run_id, summary)
        origin = self._request.shadow_of
        if origin is None or self._config is None:
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._production is not None,
                timeout=self._config.budgets.run_timeout_seconds,
            )
        if self._production is None:
            workflow.logger.warning("shadow: the production result never came")
            return
        comparison = await shadow.compare(self._config.agent, origin, self._production, summary)
        if comparison is not None:
            self._state.shadow_comparison = comparison
            self._upsert_visibility()

    # --- bookkeeping ----------------------------------------------------------------------

    def _context(self) -> RunContext:
        config = self._state.config
        return RunContext(
            user_id=self._request.user_id,
            tenant_id=self._request.tenant_id,
            variant=config.variant if config else "control",
            build_id=config.build_id if config else None,
            agent_version=config.agent_version if config else None,
            config_hash=config.config_hash if config else None,
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

    def _safety(self, kind: SafetyKind, detail: str) -> None:
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
            visibility.search_attribute_updates(self._request, self._state, workflow.now())
        )
        workflow.upsert_memo(visibility.memo(self._state))


def _build_id() -> str | None:
    """The Worker Deployment build id this run's code came from (None when unversioned)."""
    version = workflow.info().get_current_deployment_version()
    return version.build_id if version is not None else None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
