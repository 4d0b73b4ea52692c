"""What a workflow shows outside itself: search attributes, memo, current details, its result.

Pure functions of a run's (or a rollout's) request and state; `AgentRun` and
`CanaryRollout` apply them on every status change so the Temporal UI list and detail pages
say what each workflow is and where it stands.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeUpdate

from workflows import contract
from workflows.payloads import RunConfig, RunContext, RunOutcome
from workflows.rollout_types import RolloutState
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ComparedRun,
    ConfigSummary,
)


def search_attribute_updates(
    request: AgentRunRequest, state: AgentRunState
) -> list[SearchAttributeUpdate[Any]]:
    updates: list[SearchAttributeUpdate[Any]] = [
        contract.AGENT_NAME.value_set(request.agent),
        contract.AGENT_STATUS.value_set(state.status.value),
        contract.AGENT_VARIANT.value_set(state.config.variant if state.config else "control"),
        contract.AGENT_COST_USD.value_set(state.usage.cost_usd),
        contract.AGENT_TOKENS.value_set(state.usage.total_tokens),
    ]
    if request.user_id:
        updates.append(contract.AGENT_USER.value_set(request.user_id))
    if request.tenant_id:
        updates.append(contract.AGENT_TENANT.value_set(request.tenant_id))
    return updates


def memo(state: AgentRunState) -> dict[str, Any]:
    config = state.config
    return {
        "status": state.status.value,
        "reason": state.reason,
        "step": state.step,
        "cost_usd": state.usage.cost_usd,
        "output_preview": (state.output or "")[:200] or None,
        # Which code, definition and prompt produced this run.
        "build_id": config.build_id if config else None,
        "agent_version": config.agent_version if config else None,
        "config_hash": config.config_hash if config else None,
        "prompt_version": config.prompt_version if config else None,
        "flags_degraded": config.flags_degraded if config else None,
        "shadow_run_id": state.shadow_run_id,
    }


def current_details(state: AgentRunState) -> str:
    """Markdown for the UI's "current details": status, what it waits for, spend."""
    lines = [f"**{state.status.value}** at step {state.step}"]
    if state.reason:
        lines.append(f"reason: {state.reason}")
    for pending in state.pending_approvals:
        escalated = " (escalated)" if pending.is_escalated else ""
        lines.append(
            f"waiting for approval{escalated}: {pending.reason} - request {pending.request_id}; "
            'signal `approval_decision` {"approved": true, "approver": "NAME"}'
        )
    lines.append(f"tokens {state.usage.total_tokens}, cost ${state.usage.cost_usd:.4f}")
    return "\n\n".join(lines)


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
