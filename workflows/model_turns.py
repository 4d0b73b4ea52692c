"""The model's next turn in `AgentRun`: the primary model, then each fallback in order.

A model with a fallback after it gets a budget (`RunConfig.model_retry`: a few attempts or
seconds of failing) instead of the full retry policy, so the fallback takes over in
seconds; the last model gets the full policy. Every switch is a `model_fallback` safety
event, and usage is priced at the model that answered. Lean runs ask the model activity to
check the kill switches first (a turn refused by one carries it, with no call made).
Deterministic (workflow code).
"""

from __future__ import annotations

from typing import Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import calls
from workflows.contract import SafetyKind
from workflows.payloads import ChatMessage, ModelCallInput, ModelCallResult, ModelChoice, RunConfig
from workflows.policy import add_usage
from workflows.run_record import RunRecord
from workflows.types import RunStatus, StopReason


class Halts(Protocol):
    def stop_if_halted(self) -> None: ...


async def next_turn(
    run: Halts, record: RunRecord, config: RunConfig, messages: list[ChatMessage]
) -> ModelCallResult | None:
    """The next assistant message, or None when every model failed (the run has ended)."""
    failures: list[str] = []
    for index, choice in enumerate(config.models):
        try:
            turn = await _call(record, config, choice, messages)
            if turn.kill_switch is not None and turn.kill_switch.is_killed:
                return turn  # refused before the call (lean runs): the run ends on it
        except ActivityError as err:
            run.stop_if_halted()  # a halt's cancellation arrives as an activity error
            cause = calls.cause(err)
            failures.append(f"fallback {choice.model}: {cause}" if index else cause)
            if index + 1 < len(config.models):
                detail = f"{choice.model} failed ({cause}); trying fallback"
                record.safety(SafetyKind.MODEL_FALLBACK, detail)
            continue
        usage = record.state.usage
        record.state.usage = add_usage(usage, choice.price, turn.input_tokens, turn.output_tokens)
        if not record.is_lean:  # lean: spend shows with the next status change
            record.upsert_visibility()
        return turn
    reason = f"model call failed: {'; '.join(failures)}"
    record.finish(RunStatus.FAILED, StopReason.MODEL_ERROR, reason)
    return None


async def _call(
    record: RunRecord, config: RunConfig, choice: ModelChoice, messages: list[ChatMessage]
) -> ModelCallResult:
    has_fallback = choice is not config.models[-1]
    return await calls.chat(
        ModelCallInput(
            run_id=workflow.info().workflow_id,
            agent=config.agent,
            step=record.state.step,
            model=choice,
            prompt_version=config.prompt_version,
            messages=messages,
            tools=config.tools,
            max_output_tokens=config.max_output_tokens,
            context=record.context(),
            fallback_after=config.model_retry if has_fallback else None,
            check_kill_switch=record.is_lean,
        ),
        config.model_timeout_seconds,
    )
