"""A run's side of the quota ledgers: reserve before each model call, commit after it,
close at the end (workflows/quota_ledger.py keeps the books).

The first reserve also opens the run (the open-runs cap); a refusal ends the run
`budget_exceeded` with stop reason `quota_exceeded`, or parks it for a human when the
agent's `[quotas] on_exceeded = "require_approval"`. The reservation key is the run id
and step, so a retried activity holds nothing twice. When the ledgers cannot be reached
the call is refused (fail closed: spend must not run unchecked). Deterministic.
"""

from __future__ import annotations

import json

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import calls
from workflows.approvals import ApprovalBook
from workflows.contract import SafetyKind
from workflows.control_types import QuotaCall, QuotaCommit, QuotaPolicy, QuotaReserve
from workflows.human_review import Question, ask_human
from workflows.payloads import ChatMessage, RunConfig
from workflows.policy import price_usage
from workflows.quota_types import Refusal, usd
from workflows.run_record import RunRecord
from workflows.tool_calls import RunControls
from workflows.types import RunStatus, StopReason

# Patch id: runs of agents with quotas call the quota activity (new commands).
QUOTA_PATCH = "quota-ledgers"


def estimate_cost(config: RunConfig, messages: list[ChatMessage]) -> float:
    """What the next call may cost at most, to reserve: the prompt at three characters a
    token (providers count about four) plus the tool schemas, and a full answer
    (`max_output_tokens`), priced at the dearest model of the chain."""
    chars = sum(
        len(m.content or "") + len(m.model_dump_json(include={"tool_calls"})) for m in messages
    )
    chars += sum(len(t.description) + len(json.dumps(t.parameters)) for t in config.tools)
    input_tokens = chars // 3 + 8 * len(messages) + 1
    return max(price_usage(m.price, input_tokens, config.max_output_tokens) for m in config.models)


def describe(refusal: Refusal) -> str:
    when = f" (resets {refusal.resets_at:%Y-%m-%d %H:%M}Z)" if refusal.resets_at else ""
    return f"quota exceeded: {refusal.message}{when}"


class RunQuotas:
    def __init__(
        self, run: RunControls, record: RunRecord, approvals: ApprovalBook, policy: QuotaPolicy
    ) -> None:
        self._run, self._record, self._approvals, self._policy = run, record, approvals, policy
        self._is_open = False

    @classmethod
    def for_run(
        cls, run: RunControls, record: RunRecord, approvals: ApprovalBook, config: RunConfig
    ) -> RunQuotas | None:
        """The run's quotas, when its config limits any scope (asks the patch only then)."""
        if config.quotas is None or not config.quotas.scopes or not workflow.patched(QUOTA_PATCH):
            return None
        return cls(run, record, approvals, config.quotas)

    def _key(self) -> str:
        return f"{workflow.info().workflow_id}:{self._record.state.step}:model"

    async def before_model(self, config: RunConfig, messages: list[ChatMessage]) -> bool:
        """Reserve this step's estimated cost in every ledger; False when the run ended.
        A shadow twin spends real money but is not one of its user's open runs."""
        estimate = estimate_cost(config, messages)
        call = self._call(
            open_run=not self._is_open and not config.is_shadow,
            reserve=QuotaReserve(key=self._key(), amount_usd=estimate),
        )
        result = await self._apply(call, f"quota: reserve {usd(estimate)}")
        if isinstance(result, str):
            reason = f"refused: the quota ledgers could not be reached ({result})"
            self._record.finish(RunStatus.BUDGET_EXCEEDED, StopReason.QUOTA_EXCEEDED, reason)
            return False
        self._is_open = True
        if result is None:
            return True
        message = describe(result)
        self._record.safety(SafetyKind.QUOTA_EXCEEDED, message, action="refused")
        if result.limit == "max_open_runs" or self._policy.on_exceeded == "refuse":
            verb = "refused" if self._record.state.step <= 1 else "stopped"
            self._record.finish(
                RunStatus.BUDGET_EXCEEDED, StopReason.QUOTA_EXCEEDED, f"{verb}: {message}"
            )
            return False
        question = Question(
            subject="quota",
            reason=f"{message}; approve to spend over it",
            arguments={"scope": result.scope.label(), "estimate_usd": estimate},
        )
        outcome = await ask_human(self._run, self._record, self._approvals, config, question)
        if outcome.outcome == "approved":
            return True  # unreserved: the commit after the call still counts it
        who = (
            f"rejected by {outcome.approver}" if outcome.outcome == "rejected" else outcome.outcome
        )
        reason = f"{message}; spending over it was not approved ({who})"
        self._record.finish(RunStatus.BUDGET_EXCEEDED, StopReason.QUOTA_EXCEEDED, reason)
        return False

    async def after_model(self, cost_usd: float | None) -> None:
        """Commit the step's actual cost (None: no model answered; release the reservation)."""
        key = self._key()
        if cost_usd is None:
            call, summary = self._call(release=key), "quota: release"
        else:
            call, summary = (
                self._call(commit=QuotaCommit(key=key, actual_usd=cost_usd)),
                f"quota: commit {usd(cost_usd)}",
            )
        problem = await self._apply(call, summary)
        if isinstance(problem, str):
            self._record.safety(SafetyKind.QUOTA_UNCHECKED, f"spend not recorded: {problem}")

    async def close(self) -> None:
        """The run ended: free its open-run slot and anything it still holds."""
        # Called by the run after its drive ended (a halt included): no halt check here.
        problem = await self._apply(self._call(close_run=True), "quota: run ended", in_drive=False)
        if isinstance(problem, str):  # the ledgers release stale reservations themselves
            self._record.safety(SafetyKind.QUOTA_UNCHECKED, f"run not closed: {problem}")

    def _call(self, **parts: object) -> QuotaCall:
        return QuotaCall.model_validate(
            {"run_id": workflow.info().workflow_id, "scopes": self._policy.scopes, **parts}
        )

    async def _apply(
        self, call: QuotaCall, summary: str, *, in_drive: bool = True
    ) -> Refusal | str | None:
        """The refusal, None when granted, or why the ledgers could not be reached. Inside
        the run's drive, a halt that came in meanwhile stops it here."""
        try:
            result = await calls.apply_quota(call, summary)
        except ActivityError as err:
            if in_drive:
                self._run.stop_if_halted()
            return calls.cause(err)
        if in_drive:
            self._run.stop_if_halted()
        return result.refusal
