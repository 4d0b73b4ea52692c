"""The record of one `AgentRun`: its state, and how every change to it shows outside.

Status changes upsert the search attributes and memo (lean runs: what changed, and the
outcome with the last one) and rewrite the UI's current details;
safety events and the run's end are logged through `workflow.logger` (silent on replay).
Keeping this in one place is what makes a run look the same from the query, the UI list,
the logs and the outcome store. Deterministic (workflow code).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate, TypedSearchAttributes
from temporalio.exceptions import ActivityError

from workflows import calls, contract, visibility
from workflows.contract import OUTCOME_MEMO, SafetyKind
from workflows.payloads import KillSwitchCheck, RunContext, RunOutcome, ToolCallRequest
from workflows.redaction import UserAttribute
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalRecord,
    FallbackRecord,
    RunStatus,
    SafetyEvent,
    StopReason,
)

# Runs that end without completing write `AgentStopReason` with their last upsert.
STOP_REASON_PATCH = "stop-reason-attribute"


class RunRecord:
    def __init__(self, request: AgentRunRequest, state: AgentRunState) -> None:
        self.request = request
        self.state = state
        # How AgentUser shows the user id: the run's config says once it is resolved.
        self.user_attribute: UserAttribute = "raw"
        self._has_unknown_switch = False
        # Runs with the `lean-run` patch upsert only what changed (search attributes when
        # a status, the variant or the spend changed; the memo with status changes) and
        # carry their outcome in the last upsert; set by the run at its start.
        self.is_lean = False
        self._memo_sent: dict[str, Any] | None = None  # what the lean memo shows now

    def context(self) -> RunContext:
        """Who the run is for and which code and configuration it runs: on every activity."""
        config = self.state.config
        return RunContext(
            user_id=self.request.user_id,
            tenant_id=self.request.tenant_id,
            variant=config.variant if config else "control",
            build_id=config.build_id if config else None,
            agent_version=config.agent_version if config else None,
            config_hash=config.config_hash if config else None,
        )

    def idempotency_key(self, call: ToolCallRequest) -> str:
        """run id : step : call id, so a retried tool call is recognised as the same call."""
        return f"{workflow.info().workflow_id}:{self.state.step}:{call.id}"

    def safety(self, kind: str, detail: str, *, action: str | None = None) -> None:
        """A safety event; `action`: what was done about it (blocked, masked...)."""
        self.state.safety_events.append(
            SafetyEvent(
                kind=kind, step=self.state.step, detail=detail, at=workflow.now(), action=action
            )
        )
        workflow.logger.warning(
            "safety event",
            extra={"kind": kind, "detail": detail, "step": self.state.step, "action": action},
        )

    def fallback(self, from_model: str, to_model: str, reason: str) -> None:
        """The run moves on to the next model of its chain: a safety event and a record."""
        self.state.fallbacks.append(
            FallbackRecord(
                step=self.state.step,
                from_model=from_model,
                to_model=to_model,
                reason=reason,
                at=workflow.now(),
            )
        )
        self.safety(SafetyKind.MODEL_FALLBACK, f"{from_model} failed ({reason}); trying fallback")

    def finish(self, status: RunStatus, stop_reason: StopReason, reason: str) -> None:
        state = self.state
        state.stop_reason = stop_reason
        state.reason = reason
        self.set_status(status)
        workflow.logger.info(
            "run ended: %s (%s)",
            status.value,
            reason,
            extra={
                "status": status.value,
                "stop_reason": stop_reason.value,
                "steps": state.step,
                "input_tokens": state.usage.input_tokens,
                "output_tokens": state.usage.output_tokens,
                "cost_usd": state.usage.cost_usd,
            },
        )

    def end_by_kill_switch(self, check: KillSwitchCheck) -> None:
        """A global or agent switch is on: a new run is refused, a running one halts."""
        verb = "refused" if self.state.step == 0 else "halted"
        self.safety(SafetyKind.KILL_SWITCH, check.reason or "kill switch on")
        self.finish(RunStatus.HALTED, StopReason.KILL_SWITCH, f"{verb}: {check.reason}")

    def switch_unknown(self, check: KillSwitchCheck) -> None:
        """A kill switch could not be read: mark the run `flags_degraded` (state, memo and a
        safety event), once; the caller refuses what an unknown switch forbids."""
        if self._has_unknown_switch:
            return
        self._has_unknown_switch = True
        why = check.reason or "a kill switch could not be read"
        config = self.state.config
        if config is not None:
            config.flags_degraded = "; ".join(filter(None, [config.flags_degraded, why]))
        self.safety(SafetyKind.FLAGS_DEGRADED, why)
        self.upsert_visibility()

    def kill_switch_seen(self, check: KillSwitchCheck | None) -> KillSwitchCheck | None:
        """A check that an activity made itself (lean runs): None when no switch is on and
        every one could be read; else the check, an unknown one recorded as a failed or
        unknown check activity's is (`kill_switch_unchecked` when the check itself failed,
        and the run marked `flags_degraded`): the caller refuses what it forbids."""
        if check is None or not (check.is_killed or check.is_unknown):
            return None
        if not check.is_killed:
            if check.is_unchecked:
                self.safety(SafetyKind.KILL_SWITCH_UNCHECKED, check.reason or "not checked")
            self.switch_unknown(check)
        return check

    def refuse_new_run(self, check: KillSwitchCheck) -> None:
        """A new run while a kill switch's state is unknown: refused, like a killed agent's."""
        why = check.reason or "a kill switch could not be read"
        self.safety(SafetyKind.FLAGS_DEGRADED_REFUSAL, f"run refused: {why}")
        self.finish(RunStatus.HALTED, StopReason.KILL_SWITCH, f"refused: {why}")

    def set_status(self, status: RunStatus) -> None:
        self.state.status = status
        # Lean: the memo follows status changes; the first `running` (set by the starter
        # already) shows only in the search attributes, with the variant.
        self.upsert_visibility(memo=status is not RunStatus.RUNNING or bool(self._memo_sent))
        workflow.set_current_details(visibility.current_details(self.state))

    def upsert_visibility(self, *, memo: bool = True) -> None:
        updates = visibility.search_attribute_updates(
            self.request, self.state, self.user_attribute, now=workflow.now()
        )
        if not self.is_lean:
            workflow.upsert_search_attributes(updates)
            workflow.upsert_memo(visibility.memo(self.state))
            return
        if not self.state.status.is_terminal:  # SLIs read ended runs: set with the last one
            updates = [u for u in updates if u.key.name not in visibility.SLI_ATTRIBUTES]
        stop_reason = visibility.stop_reason_value(self.state)
        # Asked only by runs that end without completing: a completed run pays no marker.
        if stop_reason is not None and workflow.patched(STOP_REASON_PATCH):
            updates.append(contract.AGENT_STOP_REASON.value_set(stop_reason))
        shown = workflow.info().typed_search_attributes
        changed = [u for u in updates if shown.get(u.key) != u.value and not _is_set_once(u, shown)]
        if changed:
            workflow.upsert_search_attributes(changed)
        if memo:
            self._upsert_memo_changes()

    def _upsert_memo_changes(self) -> None:
        """The memo keys whose value changed (a terminal status adds the outcome, redacted
        like the rest of the memo): fewer payloads, and no event at all when nothing changed."""
        wanted = visibility.memo(self.state)
        if self.state.status.is_terminal:
            wanted[OUTCOME_MEMO] = visibility.memo_outcome(self.outcome(), self.user_attribute)
        sent = self._memo_sent
        if sent is None:  # the start memo (or the one continue-as-new carried) has others
            shown = workflow.info().raw_memo
            changes = {k: v for k, v in wanted.items() if v is not None or k in shown}
        else:
            changes = {k: v for k, v in wanted.items() if v != sent.get(k)}
        if changes:
            workflow.upsert_memo(changes)
        self._memo_sent = wanted

    def log_approval(self, record: ApprovalRecord) -> None:
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

    def result(self) -> AgentRunResult:
        return visibility.result_of(self.state)

    def outcome(self) -> RunOutcome:
        """The finished run's outcome for SLOs and canary comparisons."""
        return visibility.outcome_of(
            workflow.info().workflow_id, self.request, self.state, self.context(), workflow.now()
        )

    async def record_outcome(self) -> None:
        """Keep the finished run's outcome (an activity). Lean runs carry it in their last
        memo upsert instead, where the worker's outcome recorder and visibility read it."""
        if self.is_lean:
            return
        outcome = self.outcome()
        try:
            await calls.record_outcome(outcome)
        except ActivityError as err:
            workflow.logger.warning("outcome not recorded: %s", calls.cause(err))


def build_id() -> str | None:
    """The Worker Deployment build id this run's code came from (None when unversioned)."""
    version = workflow.info().get_current_deployment_version()
    return version.build_id if version is not None else None


def _is_set_once(update: SearchAttributeUpdate[Any], shown: TypedSearchAttributes) -> bool:
    """The run's latency, already set when it ended: what follows (a shadow's comparison)
    is not part of it."""
    return update.key == contract.AGENT_LATENCY_SECONDS and shown.get(update.key) is not None
