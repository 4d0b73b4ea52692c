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

from workflows import calls, shadow, visibility
from workflows.approvals import ApprovalBook
from workflows.contract import AGENT_RUN_WORKFLOW, Query, SafetyKind, Signal, Update
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
# Kill switches checked by the config, model and tool activities themselves (a local
# activity only before an approval), visibility upserted only when it changes, and the
# outcome carried by the last upsert instead of an activity (docs/decisions.md, issue 13).
LEAN_RUN_PATCH = "lean-run"
_EMPTY_ANSWER_FEEDBACK = "Your last answer was empty. Answer the user, or call a tool."


# Outside the sandbox (docs/decisions.md, "Workflow sandbox"): tests/unit/
# test_workflow_sandbox.py checks this package for what the sandbox would refuse.
@workflow.defn(
    name=AGENT_RUN_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED, sandboxed=False
)
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
        # Asked in the first task, which holds only the start: replays ask it there too.
        record.is_lean = workflow.patched(LEAN_RUN_PATCH)
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
        if self._config.shadow is not None and state.shadow_run_id is None:
            await shadow.start(record, self._config.shadow)

        drive = asyncio.create_task(self._drive(self._config))
        assert self._deadline is not None
        remaining = (self._deadline - workflow.now()).total_seconds()
        try:
            if remaining <= 0:
                raise TimeoutError
            if record.is_lean:
                await self._until_driven(drive, remaining)
            else:
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
        await shadow.after_end(record, self._config, lambda: self._production)
        await record.record_outcome()
        return record.result()

    async def _until_driven(self, drive: asyncio.Task[None], remaining: float) -> None:
        """Until the drive ends or a halt comes; TimeoutError at the run's deadline. The
        deadline's timer is not cancelled when the drive ends first: it lapses with the run,
        one history event fewer than a `wait_condition` timeout, which cancels its timer."""
        deadline = asyncio.create_task(asyncio.sleep(remaining))
        await workflow.wait_condition(
            lambda: drive.done() or self._halt is not None or deadline.done()
        )
        if not drive.done() and self._halt is None:
            raise TimeoutError

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
            turn = await self._call_model(config)
            if turn is None:
                return
            if turn.kill_switch is not None:  # refused before the call: no step was taken
                state.step -= 1
                record.end_by_kill_switch(turn.kill_switch)
                return
            self.stop_if_halted()
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
                    check_kill_switch=self._record.is_lean,
                )
            )
        except ActivityError as err:
            self._record.finish(RunStatus.FAILED, StopReason.CONFIG_ERROR, calls.cause(err))
            await self._record.record_outcome()
            return None

    async def _call_model(self, config: RunConfig) -> ModelCallResult | None:
        """The model's next turn: the primary model, then each fallback in turn when a call
        fails for good (a `model_fallback` safety event each). None: all failed, run over."""
        record, failures = self._record, []
        for index, choice in enumerate(config.models):
            try:
                turn = await self._model_activity(config, choice)
                if turn.kill_switch is not None:
                    return turn
            except ActivityError as err:
                self.stop_if_halted()  # a halt's cancellation arrives as an activity error
                cause = calls.cause(err)
                failures.append(f"fallback {choice.model}: {cause}" if index else cause)
                if index + 1 < len(config.models):
                    detail = f"{choice.model} failed ({cause}); trying fallback"
                    record.safety(SafetyKind.MODEL_FALLBACK, detail)
                continue
            usage = record.state.usage
            record.state.usage = add_usage(
                usage, choice.price, turn.input_tokens, turn.output_tokens
            )
            if not record.is_lean:  # lean: spend shows with the next status change
                record.upsert_visibility()
            return turn
        reason = f"model call failed: {'; '.join(failures)}"
        record.finish(RunStatus.FAILED, StopReason.MODEL_ERROR, reason)
        return None

    async def _model_activity(self, config: RunConfig, choice: ModelChoice) -> ModelCallResult:
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
                check_kill_switch=self._record.is_lean,
            ),
            config.model_timeout_seconds,
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
        """The kill switch that covers this call, if one is on. Lean runs: the run's own
        switches as the config found them, at its first step (the model and tool
        activities check later calls); a tool's before an approval is asked for it."""
        if self._record.is_lean and tool is None:
            return config.kill_switch if self._record.state.step == 0 else None
        if not self._record.is_lean and not workflow.patched(KILL_SWITCH_PATCH):
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
