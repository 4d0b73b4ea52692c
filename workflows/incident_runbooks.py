"""Runbooks as data, and which of their steps an incident runs at once, on request or only
with a second person's approval. Pure and deterministic, like `incident_policy`."""

from __future__ import annotations

from collections.abc import Sequence

from workflows.incident_config_types import (
    AGENT_PLACEHOLDER,
    FAIL_CLOSED_RUNBOOK,
    Runbook,
    RunbookStep,
    SeverityMatrix,
    StepMode,
)
from workflows.incident_types import PlannedStep as PlannedStep  # re-exported
from workflows.incident_types import RunStepRequest, Severity, StepRun, TriggerKind


def fail_closed_step(agent: str, severity: Severity, is_safety: bool) -> PlannedStep | None:
    """A SEV1 safety incident engages the agent's kill switch at once, asking nobody:
    with users possibly harmed, stopping the agent is the safe default."""
    if severity != Severity.SEV1 or not is_safety:
        return None
    return PlannedStep(
        key=f"{FAIL_CLOSED_RUNBOOK}/kill-switch",
        runbook=FAIL_CLOSED_RUNBOOK,
        runbook_version="1",
        action="engage_kill_switch",
        target=f"agent:{agent}",
        is_risky=True,
        mode="automatic",
        reason="SEV1 safety incident: the agent's kill switch is engaged at once (fail closed)",
    )


def _mode(
    runbook: Runbook, step: RunbookStep, is_automatic: bool, auto_allowed: bool
) -> tuple[StepMode, str]:
    if step.is_risky and not auto_allowed:
        return "needs_approval", "risky step: a second person approves it at this severity"
    if is_automatic:
        return "automatic", f"runbook {runbook.name} runs by itself for this trigger and severity"
    return "on_request", "runs when a responder asks for it"


def plan_steps(
    runbooks: Sequence[Runbook],
    matrix: SeverityMatrix,
    *,
    agent: str,
    severity: Severity,
    trigger: TriggerKind,
    is_safety: bool,
) -> list[PlannedStep]:
    """Every step the incident may run, each with its mode, in runbook order.

    Risky steps run unasked only when the severity's `auto_actions_allowed` says so; a
    runbook's other steps run at once when its `automatic_on` matches, else on request.
    """
    auto_allowed = matrix.level(severity).auto_actions_allowed
    fail_closed = fail_closed_step(agent, severity, is_safety)
    plan = [fail_closed] if fail_closed else []
    for runbook in sorted((r for r in runbooks if r.is_for(agent)), key=lambda r: r.name):
        is_automatic = runbook.is_automatic(trigger, severity)
        for step in runbook.steps:
            target = step.target.replace(AGENT_PLACEHOLDER, agent)
            if fail_closed and (step.action, target) == (fail_closed.action, fail_closed.target):
                continue  # already engaged by the fail-closed rule
            mode, reason = _mode(runbook, step, is_automatic, auto_allowed)
            plan.append(
                PlannedStep(
                    key=f"{runbook.name}/{step.id}",
                    runbook=runbook.name,
                    runbook_version=runbook.version,
                    action=step.action,
                    target=target,
                    is_risky=step.is_risky,
                    params=dict(step.params),
                    mode=mode,
                    reason=reason,
                )
            )
    return plan


def automatic_steps(plan: Sequence[PlannedStep]) -> list[PlannedStep]:
    return [step for step in plan if step.mode == "automatic"]


def check_run_step(
    plan: Sequence[PlannedStep], request: RunStepRequest, steps_run: Sequence[StepRun]
) -> PlannedStep:
    """The planned step a `run_step` update asks for, or ValueError with a one-line reason
    (for the update's validator)."""
    by_key = {step.key: step for step in plan}
    step = by_key.get(request.step)
    if step is None:
        known = ", ".join(by_key) or "none"
        raise ValueError(f"unknown step {request.step!r} (planned: {known})")
    if step.mode == "needs_approval":
        if not request.approved_by:
            raise ValueError(f"step {step.key} is risky: it needs approved_by (a second person)")
        if request.approved_by == request.by:
            raise ValueError(
                f"step {step.key}: approved_by must be someone other than {request.by}"
            )
    if any(done.step == step.key and done.is_ok for done in steps_run):
        raise ValueError(f"step {step.key} has already run")
    return step
