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
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError

from workflows import calls, inputs, kill_switches, run_end, shadow, visibility
from workflows.approvals import ApprovalBook
from workflows.contract import AGENT_RUN_WORKFLOW, Query, SafetyKind, Signal, Update
from workflows.model_turns import ModelTurns
from workflows.payloads import (
    ChatMessage,
    KillSwitchCheck,
    ModelCallResult,
    NotifyApproversInput,
    ResolveConfigInput,
    RunCheckpoint,
    RunConfig,
)
from workflows.policy import budget_breach
from workflows.run_end import END_PATCH
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
# "Changing workflow code"), so runs recorded before it still replay. Also asked by this
# workflow: END_PATCH (workflows.run_end), KILL_SWITCH_PATCH and KILL_SWITCH_FAILURE_PATCH
# (workflows.kill_switches).
HALT_PATCH = "halt-stops-at-once"
# A malformed `halt` signal halts (before: the SDK dropped it). Asked only when one lands.
SIGNAL_PATCH = "malformed-halt-halts"
# Runs with no config (config error, invalid request) show AgentUser pseudonymised.
USER_ATTRIBUTE_PATCH = "agent-user-pseudonym"
# Lean runs (docs/decisions.md, issue 13): kill switches checked by the config, model and
# tool activities themselves (a local activity only before an approval), failing closed as
# the check activity does; visibility upserted only when it changes (SLI attributes with
# the last upsert); the outcome carried by the last memo upsert instead of an activity.
# Asked once, at the top of `run`. New runs take LEAN_RUN_HARDENED_PATCH, which also closes
# in Temporal's terms (END_PATCH) without a marker of its own: two events fewer a run.
LEAN_RUN_HARDENED_PATCH = "lean-run-hardened"
# The lean path as wip/overhead recorded it before issue 9's hardening met it (golden
# histories v3/): END_PATCH is asked at the end, as on every older run.
LEAN_RUN_PATCH = "lean-run"
_EMPTY_ANSWER_FEEDBACK = "Your last answer was empty. Answer the user, or call a tool."


# Outside the sandbox (docs/decisions.md, "Workflow sandbox"): tests/unit/
# test_workflow_sandbox.py checks this package for what the sandbox would refuse.
@workflow.defn(
    name=AGENT_RUN_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED, sandboxed=False
)
class AgentRunWorkflow:
    @workflow.init
    def __init__(self, *args: Any) -> None:
        # Any payload starts a run (workflows.inputs): a bad request ends it in `run`.
        request, self._invalid_request = inputs.decode_request(args)
        self._request = request
        checkpoint = request.checkpoint
        self._config: RunConfig | None = checkpoint.config if checkpoint else None
        self._messages: list[ChatMessage] = checkpoint.messages if checkpoint else []
        state = checkpoint.state if checkpoint else AgentRunState(agent=request.agent)
        self._record = RunRecord(request, state)
        if self._config is not None:
            self._record.user_attribute = self._config.user_attribute
        self._deadline = checkpoint.deadline if checkpoint else None
        self._halt: HaltRequest | None = None
        self._approvals = ApprovalBook(state, requester=request.user_id)
        self._production: ComparedRun | None = None  # a shadow run's production twin
        self._closes_in_temporal_terms = False
        self._is_hardened_lean = False  # asked at the top of `run`
        self._turns: ModelTurns | None = None  # with the run's config: quotas, cache, models
        if request.shadow_of is not None:
            # Internal: registered on shadow runs only, so the UI's Signal form offers it
            # nowhere else (a class-level handler is listed on every run).
            workflow.set_signal_handler(Signal.PRODUCTION_RESULT, self._production_result)

    # --- public handlers (for people: docs/decisions.md, "Signals and updates") -----------

    @workflow.query(name=Query.STATE, description="Where the run stands (AgentRunState).")
    def state(self) -> AgentRunState:
        return self._record.state

    @workflow.signal(
        name=Signal.APPROVAL_DECISION,
        description='{"approved": true, "approver": "NAME", "comment": "...", '
        '"request_id": "..."} (request_id optional with one pending approval)',
    )
    def approval_decision(self, *args: Any) -> None:
        # A signal cannot be refused: a malformed or refused decision is a safety event,
        # and the approval stays pending.
        decision, problem = inputs.decode(ApprovalDecision, args)
        if decision is None:
            self._record.safety(SafetyKind.INVALID_SIGNAL, f"approval_decision: {problem}")
            return
        try:
            self._approvals.accept(decision, self._config)
        except ValueError as err:
            workflow.logger.warning("approval signal ignored: %s", err)
            self._record.safety(SafetyKind.INVALID_APPROVAL, str(err))

    @workflow.update(name=Update.DECIDE, description="An approval decision, validated.")
    async def decide(self, decision: ApprovalDecision) -> AgentRunState:
        request_id = self._approvals.accept(decision, self._config)
        await workflow.wait_condition(lambda: not self._approvals.is_pending(request_id))
        return self._record.state

    @decide.validator
    def _validate_decide(self, decision: ApprovalDecision) -> None:
        self._approvals.check(decision, self._config)

    @workflow.signal(
        name=Signal.HALT,
        description='{"reason": "...", "by": "NAME"}: stop the run now (a malformed one too)',
    )
    def halt(self, *args: Any) -> None:
        request, problem = inputs.decode(HaltRequest, args)
        if request is None:
            if not workflow.patched(SIGNAL_PATCH):
                return  # recorded before: the SDK dropped a malformed halt
            # Stopping is always safe: a malformed halt still halts, and says what was wrong.
            self._record.safety(SafetyKind.INVALID_SIGNAL, f"halt: {problem}; halted anyway")
            by = inputs.text_field(args, "by") or "unknown"
            request = HaltRequest(reason=f"halt with no valid reason ({problem})"[:2000], by=by)
        self._accept_halt(request)

    @workflow.update(
        name=Update.HALT, description="Stop the run now; answers with its state once halted."
    )
    async def halt_update(self, request: HaltRequest) -> AgentRunState:
        self._accept_halt(request)
        await workflow.wait_condition(lambda: self._record.state.status.is_terminal)
        return self._record.state

    @halt_update.validator
    def _validate_halt(self, request: HaltRequest) -> None:
        status = self._record.state.status
        if status.is_terminal:
            raise ValueError(f"the run has already ended ({status.value})")

    def _accept_halt(self, request: HaltRequest) -> None:
        if self._halt is None and not self._record.state.status.is_terminal:
            self._halt = request

    def _production_result(self, summary: ComparedRun) -> None:
        """Sent by a production run to its shadow twin when it ends."""
        self._production = summary

    # --- the run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, *args: Any) -> AgentRunResult:
        record = self._record
        # Asked in the first task, which holds only the start: replays ask it there too. A
        # new run records the first marker only; a replay finds the one its recording has.
        self._is_hardened_lean = workflow.patched(LEAN_RUN_HARDENED_PATCH)
        if self._invalid_request is not None:
            # Within the first workflow task: no activity, no outcome (no agent ran, so no
            # lean path either), and no user shown (the stand-in request has none).
            record.finish(RunStatus.FAILED, StopReason.INVALID_REQUEST, self._invalid_request)
            self._closes_in_temporal_terms = self._ends_in_temporal_terms()
            return await self._close()
        record.is_lean = self._is_hardened_lean or workflow.patched(LEAN_RUN_PATCH)
        try:
            await self._run_to_end(self._request)
        except asyncio.CancelledError:
            if not self._cancellation_is_halt():
                raise
            if not record.state.status.is_terminal:  # before the drive (config, shadow)
                if self._config is None:
                    self._pseudonymise_without_config()
                record.finish(RunStatus.HALTED, StopReason.HALT, self._halt_reason())
        self._closes_in_temporal_terms = self._ends_in_temporal_terms()
        if self._turns is not None and self._config is not None:
            # Controls (issue 12): free the run's quota, keep its answer; a cancellation
            # arriving meanwhile must not skip it (the run has ended).
            await self._despite_halt(self._turns.settle(self._config))
        if self._config is not None:
            try:
                await shadow.after_end(record, self._config, lambda: self._production)
            except asyncio.CancelledError:
                if not self._cancellation_is_halt():
                    raise  # the run had ended: a late cancellation skips the comparison
        await self._despite_halt(record.record_outcome())
        return await self._close()

    async def _run_to_end(self, request: AgentRunRequest) -> None:
        """Resolve the config, start a shadow, then drive the loop until it ends, a halt
        comes in or the run's deadline passes."""
        record, state = self._record, self._record.state
        if self._config is None:
            self._config = await self._resolve_config()
            if self._config is None:
                return
            record.user_attribute = self._config.user_attribute
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
        self._turns = ModelTurns(self, record, self._approvals, self._config, request.input)
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
                    lambda: drive.done() or self._halt is not None,
                    timeout=remaining,
                    timeout_summary="run timeout",
                )
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            if not self._cancellation_is_halt():
                raise
        if drive.done():
            drive.result()  # re-raises continue-as-new
        else:
            drive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drive
            if self._halt is not None:
                record.finish(RunStatus.HALTED, StopReason.HALT, self._halt_reason())
            else:
                budget = self._config.budgets.run_timeout_seconds
                reason = f"run timeout of {budget:g}s reached"
                record.finish(RunStatus.TIMED_OUT, StopReason.RUN_TIMEOUT, reason)

    async def _until_driven(self, drive: asyncio.Task[None], remaining: float) -> None:
        """Until the drive ends or a halt comes; TimeoutError at the run's deadline. The
        deadline's timer is not cancelled when the drive ends first: it lapses with the run,
        one history event fewer than a `wait_condition` timeout, which cancels its timer."""
        deadline = asyncio.create_task(workflow.sleep(remaining, summary="run timeout"))
        await workflow.wait_condition(
            lambda: drive.done() or self._halt is not None or deadline.done()
        )
        if not drive.done() and self._halt is None:
            raise TimeoutError

    # --- how the run closes (workflows.run_end) --------------------------------------------

    def _cancellation_is_halt(self) -> bool:
        """A Temporal cancellation request (the UI's "Request Cancellation", `temporal
        workflow cancel`) halts the run like the `halt` signal; runs recorded before the
        end patch let it cancel them at once, as the SDK does by default."""
        if workflow.cancellation_reason() is None or not self._ends_in_temporal_terms():
            return False
        self._closes_in_temporal_terms = True
        if self._halt is None:
            self._halt = run_end.halt_for_cancellation()
        return True

    def _ends_in_temporal_terms(self) -> bool:
        """Whether this run closes as the run_end table says (END_PATCH): hardened lean runs
        always do, without asking."""
        return self._is_hardened_lean or workflow.patched(END_PATCH)

    async def _despite_halt(self, step: Awaitable[None]) -> None:
        """A step after the run's end (its outcome, its quota): runs that close in Temporal's
        terms finish it even when a cancellation request (a halt) arrives meanwhile."""
        if self._closes_in_temporal_terms:
            await run_end.despite_cancellation(step, self._cancellation_is_halt)
        else:
            await step

    def _halt_reason(self) -> str:
        halt = self._halt
        return visibility.halted_reason(halt.by, halt.reason) if halt else "halted"

    async def _close(self) -> AgentRunResult:
        result = self._record.result()
        if not self._closes_in_temporal_terms:
            return result
        return await run_end.close(result)

    def _pseudonymise_without_config(self) -> None:
        if workflow.patched(USER_ATTRIBUTE_PATCH):
            self._record.user_attribute = "pseudonym"

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
            check = await self.kill_switch(config, None)
            if check is not None and check.is_killed:
                record.end_by_kill_switch(check)
                return
            if check is not None and state.step == 0:
                record.refuse_new_run(check)  # unknown: a new run is refused
                return
            state.step += 1
            assert self._turns is not None
            turn = await self._turns.next_turn(config, self._messages)
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
                    check_kill_switch=self._record.is_lean,
                )
            )
        except ActivityError as err:
            if self._cancellation_is_halt():
                raise asyncio.CancelledError from None
            self._pseudonymise_without_config()
            self._record.finish(RunStatus.FAILED, StopReason.CONFIG_ERROR, calls.cause(err))
            return None  # the outcome is recorded as every run's, in `run`

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
        """The kill-switch check before a call (workflows.kill_switches)."""
        return await kill_switches.check(self, self._record, config, tool)

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
