"""`AgentRun`: one agent run as a durable workflow.

Resolve the configuration once (an activity), then loop at most `max_steps` times:
guards (halt, kill switch, budgets) -> model call -> output checks -> each tool call
(`workflows.tool_calls`). Halt, the run timeout and budgets end the run with their own
status; `RunRecord` keeps the state and shows it outside. Deterministic: all I/O is in
activities, time comes from `workflow.now()`, ids from `workflow.uuid4()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError

from workflows import cached_answers, calls, guardrail_steps, shadow, visibility
from workflows.approvals import ApprovalBook
from workflows.contract import AGENT_RUN_WORKFLOW, ErrorType, Query, SafetyKind, Signal, Update
from workflows.guardrail_steps import Verdict
from workflows.human_review import Question, ask_human, end_unapproved
from workflows.payloads import (
    ChatMessage,
    KillSwitchCheck,
    KillSwitchInput,
    ModelCallInput,
    ModelCallResult,
    ModelChoice,
    NotifyApproversInput,
    ResolveConfigInput,
    RunCheckpoint,
    RunConfig,
)
from workflows.policy import add_usage, budget_breach
from workflows.quota_calls import RunQuotas
from workflows.run_record import RunRecord, build_id
from workflows.tool_calls import ToolCalls
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalDecision,
    ComparedRun,
    HaltRequest,
    PendingApproval,
    RunStatus,
    StopReason,
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
        state = checkpoint.state if checkpoint else AgentRunState(agent=request.agent)
        self._record = RunRecord(request, state)
        self._deadline = checkpoint.deadline if checkpoint else None
        self._halt: HaltRequest | None = None
        self._approvals = ApprovalBook(state, requester=request.user_id)
        self._production: ComparedRun | None = None  # a shadow run's production twin
        self._quotas: RunQuotas | None = None  # the ledgers it counts against, if limited
        self._answer_key: str | None = None  # its answer-cache key, if it may use one
        self._is_input_approved = False  # a human let through an input a guardrail held

    # --- public handlers ------------------------------------------------------------------

    @workflow.query(name=Query.STATE)
    def state(self) -> AgentRunState:
        return self._record.state

    @workflow.signal(name=Signal.APPROVAL_DECISION)
    def approval_decision(self, decision: ApprovalDecision) -> None:
        try:
            self._approvals.accept(decision, self._config)
        except ValueError as err:
            # A signal cannot be refused: log it and keep it as a safety event instead.
            workflow.logger.warning("approval signal ignored: %s", err)
            self._record.safety(SafetyKind.INVALID_APPROVAL, str(err))

    @workflow.update(name=Update.DECIDE)
    async def decide(self, decision: ApprovalDecision) -> AgentRunState:
        request_id = self._approvals.accept(decision, self._config)
        await workflow.wait_condition(lambda: not self._approvals.is_pending(request_id))
        return self._record.state

    @decide.validator
    def _validate_decide(self, decision: ApprovalDecision) -> None:
        self._approvals.check(decision, self._config)

    @workflow.signal(name=Signal.HALT)
    def halt(self, request: HaltRequest) -> None:
        if self._halt is None and not self._record.state.status.is_terminal:
            self._halt = request

    @workflow.signal(name=Signal.PRODUCTION_RESULT)
    def production_result(self, summary: ComparedRun) -> None:
        """Sent by a production run to its shadow twin when it ends."""
        if self._request.shadow_of is not None:
            self._production = summary

    # --- the run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: AgentRunRequest) -> AgentRunResult:
        record, state = self._record, self._record.state
        if self._config is None:
            self._config = await self._resolve_config()
            if self._config is None:
                return record.result()
            state.config = visibility.config_summary(self._config, build_id())
            state.started_at = workflow.now()
            if self._config.flags_degraded:
                record.safety(SafetyKind.FLAGS_DEGRADED, self._config.flags_degraded)
            self._deadline = workflow.now() + timedelta(
                seconds=self._config.budgets.run_timeout_seconds
            )
            self._messages = [
                ChatMessage(role="system", content=self._config.system_prompt),
                ChatMessage(role="user", content=request.input),
            ]
        record.set_status(RunStatus.RUNNING)
        self._quotas = RunQuotas.for_run(self, record, self._approvals, self._config)
        self._answer_key = cached_answers.key_of(self._config, request.input)
        if self._config.shadow is not None and state.shadow_run_id is None:
            await shadow.start(record, self._config.shadow)

        drive = asyncio.create_task(self._drive(self._config))
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
                halt = self._halt
                reason = f"halted by {halt.by}: {halt.reason}"
                record.finish(RunStatus.HALTED, StopReason.HALT, reason)
            else:
                budget = self._config.budgets.run_timeout_seconds
                reason = f"run timeout of {budget:g}s reached"
                record.finish(RunStatus.TIMED_OUT, StopReason.RUN_TIMEOUT, reason)
        if self._quotas is not None:
            await self._quotas.close()
        if self._answer_key is not None:
            await cached_answers.remember_answer(record, self._config, self._answer_key)
        await shadow.after_end(record, self._config, lambda: self._production)
        await record.record_outcome()
        return record.result()

    async def _drive(self, config: RunConfig) -> None:
        record, state = self._record, self._record.state
        tool_calls = ToolCalls(self, record, self._approvals, self._messages)
        while True:
            self.stop_if_halted()
            breach = budget_breach(config.budgets, state.usage, steps=state.step + 1)
            if breach is not None:
                record.finish(RunStatus.BUDGET_EXCEEDED, *breach)
                return
            await self._maybe_continue_as_new(config)
            killed = await self.kill_switch(config, None)
            if killed is not None:
                record.end_by_kill_switch(killed)
                return
            state.step += 1
            turn = await self._next_turn(config)
            if turn is None:
                return
            if not isinstance(turn, ModelCallResult):
                continue  # a human let the input through: ask the model again
            self._messages.append(turn.message)
            breach = budget_breach(config.budgets, state.usage, steps=state.step)
            if breach is not None:
                state.output = turn.message.content
                record.finish(RunStatus.BUDGET_EXCEEDED, *breach)
                return
            if not turn.message.tool_calls:
                answer = (turn.message.content or "").strip()
                if answer:
                    state.output = answer
                    record.finish(RunStatus.COMPLETED, StopReason.ANSWERED, "answered")
                    return
                detail = "the model answered with no text and no tool call"
                record.safety(SafetyKind.EMPTY_ANSWER, detail)
                self._messages.append(ChatMessage(role="user", content=_EMPTY_ANSWER_FEEDBACK))
                continue
            for call in turn.message.tool_calls:
                if not await tool_calls.handle(config, call):
                    return
                self.stop_if_halted()

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
            self._record.finish(RunStatus.FAILED, StopReason.CONFIG_ERROR, calls.cause(err))
            await self._record.record_outcome()
            return None

    async def _next_turn(self, config: RunConfig) -> ModelCallResult | Verdict | None:
        """The model's next turn: from the answer cache, or a model call within the run's
        quotas, through its guardrails. None: the run ended; ASK_AGAIN: call again."""
        record, state = self._record, self._record.state
        is_first = state.step == 1 and not state.tool_calls
        if (
            self._answer_key is not None
            and is_first
            and await cached_answers.answer_from_cache(record, self._answer_key)
        ):
            return None
        if self._quotas is not None and not await self._quotas.before_model(config, self._messages):
            return None
        spent = state.usage.cost_usd
        turn = await self._call_model(config)
        if self._quotas is not None:
            await self._quotas.after_model(round(state.usage.cost_usd - spent, 6) if turn else None)
        if turn is None:
            return None
        self.stop_if_halted()
        verdict = await guardrail_steps.screen(
            self, record, self._approvals, config, turn, self._messages
        )
        if verdict is Verdict.ASK_AGAIN:
            self._is_input_approved = True
            return verdict
        return turn if verdict is Verdict.GO else None

    async def _call_model(self, config: RunConfig) -> ModelCallResult | None:
        """The model's next turn: the primary model, then each fallback in turn when a call
        fails for good (a `model_fallback` safety event and record each). A call failed
        fast by an open circuit breaker asks a human first when the agent says `escalate`.
        None: all failed, run over."""
        record, failures, index, has_asked = self._record, [], 0, False
        while index < len(config.models):
            choice = config.models[index]
            fallback_from = config.models[index - 1].model if index else None
            try:
                turn = await self._model_activity(config, choice, fallback_from)
            except ActivityError as err:
                self.stop_if_halted()  # a halt's cancellation arrives as an activity error
                cause = calls.cause(err)
                if calls.error_type(err) == ErrorType.CIRCUIT_OPEN:
                    record.safety(SafetyKind.CIRCUIT_OPEN, f"{choice.model}: {cause}")
                    if config.breakers.on_model_open == "escalate" and not has_asked:
                        has_asked = True
                        if not await self._ask_about_breaker(config, choice, cause):
                            return None
                        continue  # approved: the same model once more
                failures.append(f"fallback {choice.model}: {cause}" if index else cause)
                index += 1
                if index < len(config.models):
                    record.fallback(choice.model, config.models[index].model, cause)
                continue
            usage = record.state.usage
            record.state.usage = add_usage(
                usage, choice.price, turn.input_tokens, turn.output_tokens
            )
            record.upsert_visibility()
            return turn
        reason = f"model call failed: {'; '.join(failures)}"
        record.finish(RunStatus.FAILED, StopReason.MODEL_ERROR, reason)
        return None

    async def _ask_about_breaker(self, config: RunConfig, choice: ModelChoice, cause: str) -> bool:
        """True when a human approved trying the model again; else the run has ended."""
        reason = f"{choice.model}: circuit breaker open ({cause}); approve to try it again"
        question = Question(subject=f"model {choice.model}", reason=reason)
        outcome = await ask_human(self, self._record, self._approvals, config, question)
        if outcome.outcome == "approved":
            return True
        end_unapproved(self._record, outcome, f"calling {choice.model} with its breaker open")
        return False

    async def _model_activity(
        self, config: RunConfig, choice: ModelChoice, fallback_from: str | None = None
    ) -> ModelCallResult:
        return await calls.chat(
            ModelCallInput(
                run_id=workflow.info().workflow_id,
                agent=config.agent,
                step=self._record.state.step,
                model=choice,
                prompt_version=config.prompt_version,
                messages=self._messages,
                tools=config.tools,
                max_output_tokens=config.max_output_tokens,
                context=self._record.context(),
                guardrails=config.guardrails,
                is_input_approved=self._is_input_approved,
                fallback_from=fallback_from,
            ),
            config.model_timeout_seconds,
            config.activity_queues.get(f"model:{choice.provider}"),
        )

    async def _maybe_continue_as_new(self, config: RunConfig) -> None:
        info = workflow.info()
        if not (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= config.budgets.continue_as_new_after_events
        ):
            return
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self._deadline is not None
        state = self._record.state
        state.continued_runs += 1
        checkpoint = RunCheckpoint(
            config=config, messages=self._messages, state=state, deadline=self._deadline
        )
        workflow.logger.info("continuing as new after %d events", info.get_current_history_length())
        workflow.continue_as_new(self._request.model_copy(update={"checkpoint": checkpoint}))

    # --- the run's controls (workflows.tool_calls.RunControls) ----------------------------

    @property
    def halted_by(self) -> HaltRequest | None:
        return self._halt

    def stop_if_halted(self) -> None:
        """Stop the drive now if a halt came in. `drive.cancel()` alone is not enough: when
        the halt and an activity's result (or its cancellation, as an ActivityError) arrive
        together, the SDK hands the drive that result and the cancellation is spent."""
        if self._halt is not None and workflow.patched(HALT_PATCH):
            raise asyncio.CancelledError

    async def kill_switch(self, config: RunConfig, tool: str | None) -> KillSwitchCheck | None:
        """The kill switch that covers this call, if one is on (checked before every call)."""
        if not workflow.patched(KILL_SWITCH_PATCH):
            return None
        try:
            check = await calls.check_kill_switch(
                KillSwitchInput(agent=config.agent, tool=tool, context=self._record.context())
            )
        except ActivityError as err:
            self.stop_if_halted()
            # Flags unreachable: the batch halt by the flag listener is the backstop.
            self._record.safety(SafetyKind.KILL_SWITCH_UNCHECKED, calls.cause(err))
            return None
        self.stop_if_halted()
        return check if check.is_killed else None

    async def notify(
        self, config: RunConfig, pending: PendingApproval, recipients: list[str], escalate: bool
    ) -> None:
        """Page the approvers (an activity). A lost page is a safety event: the approval
        still waits, visible in the query; it is no reason to act or to end the run."""
        try:
            await calls.notify_approvers(
                NotifyApproversInput(
                    run_id=workflow.info().workflow_id,
                    agent=config.agent,
                    approval=pending,
                    recipients=recipients,
                    is_escalation=escalate,
                    context=self._record.context(),
                )
            )
        except ActivityError as err:
            self.stop_if_halted()
            self._record.safety(SafetyKind.NOTIFICATION_FAILED, calls.cause(err))
        # A halt that came with the notification's result must not leave the run waiting.
        self.stop_if_halted()
