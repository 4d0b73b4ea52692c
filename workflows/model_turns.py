"""The model's next turn in `AgentRun`: from the answer cache, or a model call within the
run's quotas (`workflows.quota_calls`), through its guardrails (`workflows.guardrail_steps`).

The call goes to the primary model, then to each model of the fallback chain in order. A
model with a fallback after it gets a budget (`RunConfig.model_retry`: a few attempts or
seconds of failing) instead of the full retry policy, so the next model takes over in
seconds; the last model gets the full policy. A call failed fast by an open circuit breaker
(`CircuitOpen`) asks a human first when the agent says `[breakers] on_model_open =
"escalate"`. Every switch is a `model_fallback` safety event and a `FallbackRecord`, and
usage is priced at the model that answered. Lean runs ask the model activity to check the
kill switches first: a call refused by one ends the run (no step, nothing spent, the quota
reservation released); one that cannot be read marks the run `flags_degraded`.
Deterministic (workflow code).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import cached_answers, calls, guardrail_steps
from workflows.approvals import ApprovalBook
from workflows.contract import ErrorType, SafetyKind
from workflows.guardrail_steps import Verdict
from workflows.human_review import Question, ask_human, end_unapproved
from workflows.payloads import ChatMessage, ModelCallInput, ModelCallResult, ModelChoice, RunConfig
from workflows.policy import add_usage
from workflows.quota_calls import RunQuotas
from workflows.run_record import RunRecord
from workflows.tool_calls import RunControls
from workflows.types import RunStatus, StopReason


class ModelTurns:
    """One run's model turns and the controls around them. Built once the run's config is
    known; it asks the `quota-ledgers` and `answer-cache` patches only when the agent has
    quotas or a cache, so other runs record neither."""

    def __init__(
        self,
        run: RunControls,
        record: RunRecord,
        approvals: ApprovalBook,
        config: RunConfig,
        text: str,
    ) -> None:
        self._run, self._record, self._approvals = run, record, approvals
        self._quotas = RunQuotas.for_run(run, record, approvals, config)
        self._answer_key = cached_answers.key_of(config, text)
        self._is_input_approved = False  # a human let through an input a guardrail held

    async def next_turn(
        self, config: RunConfig, messages: list[ChatMessage]
    ) -> ModelCallResult | Verdict | None:
        """The next assistant message; None when the run ended here (answered from the
        cache, over quota, every model failed, a guardrail or a kill switch stopped it);
        `Verdict.ASK_AGAIN`
        when a human let a held input through and the model is to be called again."""
        record, state = self._record, self._record.state
        is_first = state.step == 1 and not state.tool_calls
        if (
            self._answer_key is not None
            and is_first
            and await cached_answers.answer_from_cache(record, self._answer_key)
        ):
            return None
        if self._quotas is not None and not await self._quotas.before_model(config, messages):
            return None
        spent = state.usage.cost_usd
        turn = await self._call_models(config, messages)
        # Lean runs: what the model activity found of the kill switches (an unknown one
        # marks the run; one that is on refused the call, so nothing was spent).
        killed = record.kill_switch_seen(turn.kill_switch) if turn is not None else None
        is_killed = killed is not None and killed.is_killed
        if self._quotas is not None:
            answered = turn is not None and not is_killed
            await self._quotas.after_model(
                round(state.usage.cost_usd - spent, 6) if answered else None
            )
        if killed is not None and is_killed:  # refused before the call: no step
            state.step -= 1
            record.end_by_kill_switch(killed)
            return None
        if turn is None:
            return None
        self._run.stop_if_halted()
        verdict = await guardrail_steps.screen(
            self._run, record, self._approvals, config, turn, messages
        )
        if verdict is Verdict.ASK_AGAIN:
            self._is_input_approved = True
            return verdict
        return turn if verdict is Verdict.GO else None

    async def settle(self, config: RunConfig) -> None:
        """The run has ended: free its open-run slot and reservations, and keep a completed
        run's answer for the next same question."""
        if self._quotas is not None:
            await self._quotas.close()
        if self._answer_key is not None:
            await cached_answers.remember_answer(self._record, config, self._answer_key)

    async def _call_models(
        self, config: RunConfig, messages: list[ChatMessage]
    ) -> ModelCallResult | None:
        """The first model of the chain that answers; None: all failed (or a human refused
        to try a model behind an open breaker), the run has ended."""
        record, models = self._record, config.models
        failures: list[str] = []
        index, has_asked = 0, False
        while index < len(models):
            choice = models[index]
            try:
                turn = await self._call(config, index, messages)
                if turn.kill_switch is not None and turn.kill_switch.is_killed:
                    return turn  # refused before the call (lean runs): the run ends on it
            except ActivityError as err:
                self._run.stop_if_halted()  # a halt's cancellation arrives as an activity error
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
                if index < len(models):
                    record.fallback(choice.model, models[index].model, cause)
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

    async def _ask_about_breaker(self, config: RunConfig, choice: ModelChoice, cause: str) -> bool:
        """True when a human approved trying the model again; else the run has ended."""
        reason = f"{choice.model}: circuit breaker open ({cause}); approve to try it again"
        question = Question(subject=f"model {choice.model}", reason=reason)
        outcome = await ask_human(self._run, self._record, self._approvals, config, question)
        if outcome.outcome == "approved":
            return True
        end_unapproved(self._record, outcome, f"calling {choice.model} with its breaker open")
        return False

    async def _call(
        self, config: RunConfig, index: int, messages: list[ChatMessage]
    ) -> ModelCallResult:
        """One model of the chain: with the fast retry budget when another model follows it
        (issue 9), on its provider's rate-limited queue when it has one (issue 12)."""
        choice = config.models[index]
        has_fallback = index + 1 < len(config.models)
        return await calls.chat(
            ModelCallInput(
                run_id=workflow.info().workflow_id,
                agent=config.agent,
                step=self._record.state.step,
                model=choice,
                prompt_version=config.prompt_version,
                messages=messages,
                tools=config.tools,
                max_output_tokens=config.max_output_tokens,
                context=self._record.context(),
                fallback_after=config.model_retry if has_fallback else None,
                guardrails=config.guardrails,
                is_input_approved=self._is_input_approved,
                fallback_from=config.models[index - 1].model if index else None,
                check_kill_switch=self._record.is_lean,
            ),
            config.model_timeout_seconds,
            config.activity_queues.get(f"model:{choice.provider}"),
        )
