"""What a workflow shows outside itself: search attributes, memo, current details, its result.

Pure functions of a run's (or a rollout's) request and state; `AgentRun` and
`CanaryRollout` apply them on every status change so the Temporal UI list and detail pages
say what each workflow is and where it stands.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeUpdate

from workflows import contract
from workflows.calls import TOOL_TIMED_OUT
from workflows.payloads import RunConfig, RunContext, RunOutcome
from workflows.redaction import UserAttribute, pseudonymous_user, redact, redact_text
from workflows.rollout_types import RolloutState
from workflows.sli_types import Tally, tally_marks
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalRecord,
    ComparedRun,
    ConfigSummary,
    PendingApproval,
    RunStatus,
    StopReason,
    ToolCallRecord,
)

_PREVIEW_CHARS = 200


def search_attribute_updates(
    request: AgentRunRequest,
    state: AgentRunState,
    user_attribute: UserAttribute = "raw",
    now: datetime | None = None,
) -> list[SearchAttributeUpdate[Any]]:
    """Everything a run shows in the UI's list and counts by in SLIs (workflows/sli_types.py).
    `user_attribute` says how `AgentUser` shows the user id (a run's recorded config says;
    before it, the mode its patch allows): core compares upserted values on replay. With
    `now`, an ended run also gets its start-to-end latency."""
    config = state.config
    updates: list[SearchAttributeUpdate[Any]] = [
        contract.AGENT_NAME.value_set(request.agent),
        contract.AGENT_STATUS.value_set(state.status.value),
        contract.AGENT_VARIANT.value_set(config.variant if config else "control"),
        contract.AGENT_COST_USD.value_set(state.usage.cost_usd),
        contract.AGENT_TOKENS.value_set(state.usage.total_tokens),
    ]
    if request.user_id:
        user = pseudonymous_user(request.user_id, user_attribute)
        updates.append(contract.AGENT_USER.value_set(user))
    if request.tenant_id:
        updates.append(contract.AGENT_TENANT.value_set(request.tenant_id))
    if config is not None and config.build_id:
        updates.append(contract.AGENT_BUILD_ID.value_set(config.build_id))
    variations = flag_variations(state)
    if variations:
        updates.append(contract.AGENT_FLAG_VARIATIONS.value_set(variations))
    marks = tally_marks(tallies(state))
    if marks:
        updates.append(contract.AGENT_TALLIES.value_set(marks))
    if now is not None and state.status.is_terminal and state.started_at is not None:
        latency = max(0.0, (now - state.started_at).total_seconds())
        updates.append(contract.AGENT_LATENCY_SECONDS.value_set(round(latency, 3)))
    return updates


# What SLIs and canary cohorts count ended runs by (opsready/slo/queries.py reads them on
# closed runs only): lean runs set them with their last upsert, not as they change.
SLI_ATTRIBUTES = frozenset(
    key.name
    for key in (
        contract.AGENT_BUILD_ID,
        contract.AGENT_FLAG_VARIATIONS,
        contract.AGENT_TALLIES,
        contract.AGENT_LATENCY_SECONDS,
    )
)


def halted_reason(by: str, reason: str) -> str:
    """A halted run's `reason`: who halted it and why (`stop_reason_value` reads who)."""
    return f"halted by {by}: {reason}"


def stop_reason_value(state: AgentRunState) -> str | None:
    """`AgentStopReason` of an ended run that did not complete: its stop reason, and
    `kill_switch` for a halt from the kill-switch listener (`halted by kill-switch: ...`)."""
    if not state.status.is_terminal or state.status is RunStatus.COMPLETED:
        return None
    reason = state.stop_reason
    by_kill_switch = halted_reason(contract.KILL_SWITCH_HALTER, "")
    if reason is StopReason.HALT and (state.reason or "").startswith(by_kill_switch):
        return StopReason.KILL_SWITCH.value
    return reason.value if reason is not None else None


def tallies(state: AgentRunState) -> dict[Tally, int]:
    """The run's tool calls (those that ran), their errors and timeouts, its safety events."""
    ran = [call for call in state.tool_calls if call.decision in ("executed", "failed")]
    timeouts = sum(1 for call in ran if is_timeout(call))
    errors = sum(1 for call in ran if not call.ok and not is_timeout(call))
    return {
        Tally.TOOL_CALLS: len(ran),
        Tally.TOOL_ERRORS: errors,
        Tally.TOOL_TIMEOUTS: timeouts,
        Tally.SAFETY_EVENTS: len(state.safety_events),
    }


def is_timeout(call: ToolCallRecord) -> bool:
    """A tool call whose activity timed out for good (`calls.tool_failure`), not one the
    tool answered with an error of its own."""
    return call.decision == "failed" and (call.error or "").startswith(TOOL_TIMED_OUT)


def flag_variations(state: AgentRunState) -> list[str]:
    """`flag=variation` for every flag the run evaluated to a variation, and `flag` alone
    (so a cohort can say "evaluated, but not variation N")."""
    flags = state.config.flags if state.config else []
    marks: list[str] = []
    for flag in flags:
        if flag.variation is not None:
            marks += [flag.key, f"{flag.key}={flag.variation}"]
    return marks


def memo(state: AgentRunState) -> dict[str, Any]:
    """What the workflow list shows of a run: anyone who may list workflows sees it, so
    free text (the reason, the answer's first words) is redacted."""
    config = state.config
    preview = redact_text(state.output or "")[:_PREVIEW_CHARS]
    return {
        "status": state.status.value,
        "reason": redact_text(state.reason) if state.reason else None,
        "stop_reason": state.stop_reason.value if state.stop_reason else None,
        "step": state.step,
        "cost_usd": state.usage.cost_usd,
        "tokens": state.usage.total_tokens,
        "output_preview": preview or None,
        # Which code, definition and prompt produced this run.
        "build_id": config.build_id if config else None,
        "agent_version": config.agent_version if config else None,
        "config_hash": config.config_hash if config else None,
        "prompt_version": config.prompt_version if config else None,
        "flags_degraded": redact_text(config.flags_degraded)
        if config and config.flags_degraded
        else None,
        "shadow_run_id": state.shadow_run_id,
    }


def current_details(state: AgentRunState) -> str:
    """Markdown for the UI's "current details": where the run stands, what it waits for and
    exactly how to answer (payloads in code blocks, so quotes stay straight and the JSON
    pastes as it is), who decided what, and the spend. Redacted, like the memo."""
    lines = [f"**{state.status.value}** at step {state.step}"]
    if state.reason:
        lines.append(f"reason: {redact_text(state.reason)}")
    for pending in state.pending_approvals:
        lines.extend(_pending_details(pending, several=len(state.pending_approvals) > 1))
    for record in state.approvals:
        lines.append(_decision_line(record))
    lines.append(f"tokens {state.usage.total_tokens}, cost ${state.usage.cost_usd:.4f}")
    return "\n\n".join(lines)


def _pending_details(pending: PendingApproval, *, several: bool) -> list[str]:
    escalated = " (escalated)" if pending.is_escalated else ""
    arguments = redact(pending.arguments)
    facts = ", ".join(
        f"{name} {value}"
        for name, value in arguments.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    )
    who = ", ".join(pending.approvers) if pending.approvers else "the agent's approvers"
    answer: dict[str, Any] = {"approved": True, "approver": "NAME", "comment": "why"}
    if several:  # with one pending approval the request id may be left out
        answer = {"request_id": pending.request_id, **answer}
    return [
        f"**waiting for approval{escalated}**: `{pending.tool}` ({pending.risk_tier.value})"
        + (f": {_short(facts)}" if facts else ""),
        f"why: {redact_text(pending.reason)}; request `{pending.request_id}`",
        f"who may approve: {who} (never the user who asked for the run)",
        "arguments:\n\n" + _code(arguments),
        "to answer, signal `approval_decision` (or update `decide`) with, as `approved` "
        "`true` or `false`:\n\n" + _code(answer),
    ]


def _decision_line(record: ApprovalRecord) -> str:
    who = f" by {record.approver}" if record.approver else ""
    comment = f": {redact_text(record.comment)}" if record.comment else ""
    outcome = record.outcome.replace("_", " ")
    when = record.decided_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"`{record.tool}` {outcome}{who}{comment} ({when})"


def _code(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return f"```json\n{text}\n```"


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def config_summary(config: RunConfig, build_id: str | None) -> ConfigSummary:
    return ConfigSummary(
        agent_version=config.agent_version,
        prompt_version=config.prompt_version,
        model=config.primary.model,
        variant=config.variant,
        config_hash=config.config_hash,
        build_id=build_id,
        flags=config.flags,
        flags_degraded=config.flags_degraded,
        is_shadow=config.is_shadow,
    )


def outcome_of(
    run_id: str, request: AgentRunRequest, state: AgentRunState, context: RunContext, now: datetime
) -> RunOutcome:
    """The record of a finished run for SLOs and canary comparisons."""
    config = state.config
    return RunOutcome(
        run_id=run_id,
        agent=state.agent,
        variant=config.variant if config else "control",
        status=state.status,
        stop_reason=state.stop_reason,
        steps=state.step,
        usage=state.usage,
        safety_events=len(state.safety_events),
        started_at=state.started_at or now,
        ended_at=now,
        context=context,
        safety_kinds=[event.kind for event in state.safety_events],
        approvals=state.approvals,
        flag_variations={
            f.key: f.variation for f in (config.flags if config else []) if f.variation is not None
        },
        build_id=config.build_id if config else None,
        is_shadow=request.shadow_of is not None,
    )


def memo_outcome(outcome: RunOutcome, user_attribute: UserAttribute) -> dict[str, Any]:
    """The outcome as the memo shows it (lean runs' last upsert, read by the worker's
    outcome recorder): redacted like the rest of the memo, the user as `AgentUser` shows
    it and approvers' comments masked; ids, counts and times as they are."""
    context = outcome.context
    user = pseudonymous_user(context.user_id, user_attribute) if context.user_id else None
    approvals = [
        a.model_copy(
            update={
                "approver": redact_text(a.approver) if a.approver else None,
                "comment": redact_text(a.comment) if a.comment else None,
            }
        )
        for a in outcome.approvals
    ]
    shown = outcome.model_copy(
        update={"context": context.model_copy(update={"user_id": user}), "approvals": approvals}
    )
    return shown.model_dump(mode="json")


def compared_run(run_id: str, state: AgentRunState, ended_at: datetime) -> ComparedRun:
    """One side of a shadow comparison: outcome, tool plan, spend, latency."""
    started = state.started_at or ended_at
    return ComparedRun(
        run_id=run_id,
        status=state.status,
        output=state.output,
        tool_plan=[call.tool for call in state.tool_calls],
        cost_usd=state.usage.cost_usd,
        total_tokens=state.usage.total_tokens,
        latency_s=round((ended_at - started).total_seconds(), 3),
        safety_events=[event.kind for event in state.safety_events],
    )


def result_of(state: AgentRunState) -> AgentRunResult:
    return AgentRunResult(
        status=state.status,
        output=state.output,
        reason=state.reason,
        stop_reason=state.stop_reason,
        steps=state.step,
        usage=state.usage,
        tool_calls=state.tool_calls,
        approvals=state.approvals,
        safety_events=state.safety_events,
        config=state.config,
        shadow_run_id=state.shadow_run_id,
        shadow_comparison=state.shadow_comparison,
        fallbacks=state.fallbacks,
    )


# --- CanaryRollout ---------------------------------------------------------------------------


def rollout_memo(state: RolloutState) -> dict[str, Any]:
    target = state.deployment
    subject: dict[str, str | None] = (
        {"flag": state.flag}
        if target is None
        else {"deployment": target.deployment, "candidate_build": target.candidate_build}
    )
    return {
        **subject,
        "status": state.status,
        "percent": state.percent,
        "stage": f"{state.stage_index + 1}/{len(state.stages)}",
        "reason": state.reason,
    }


def rollout_details(state: RolloutState) -> str:
    """Markdown for the UI: who serves what, the last check, what it waits for."""
    target = state.deployment
    serves = (
        f"candidate variation {state.candidate_variation} serves {state.percent:g}% of "
        f"`{state.flag}`"
        if target is None
        else f"build `{target.candidate_build}` serves {state.percent:g}% of new runs of "
        f"Worker Deployment `{target.deployment}`"
    )
    lines = [
        f"**{state.status}**: {serves} (stage {state.stage_index + 1}/"
        f"{len(state.stages)}: {state.stages[state.stage_index]:g}%)"
    ]
    if state.reason:
        lines.append(f"reason: {state.reason}")
    if state.decisions:
        last = state.decisions[-1]
        lines.append(f"last check ({last.stage_percent:g}%): {last.decision}: {last.reasons[0]}")
    if state.status == "awaiting_approval" and state.approval is not None:
        lines.append(
            f"waiting for approval of 100% from {', '.join(state.approval.approvers)}: "
            'signal `approval_decision` {"approved": true, "approver": "NAME"}'
        )
    return "\n\n".join(lines)
