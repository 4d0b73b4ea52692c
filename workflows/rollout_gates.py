"""The health gates of a canary stage: promote, hold or roll back, as a pure function.

Used by `CanaryRollout` after every soak (deterministic: no I/O, no clock) and by anything
else that ramps traffic on recorded run outcomes, such as a Worker Deployment ramp.
"""

from __future__ import annotations

from workflows.rollout_types import CohortStats, HealthGates, StageVerdict

# Rates and ratios are compared with a little slack, so a drop of exactly the limit passes
# despite float rounding (0.95 - 0.90 is 0.05000000000000004).
_SLACK = 1e-9


def judge_stage(
    candidate: CohortStats,
    control: CohortStats,
    gates: HealthGates,
    *,
    soak: int = 1,
    max_soaks: int = 1,
) -> tuple[StageVerdict, list[str]]:
    """The verdict on one stage after its `soak`-th soak, and the reasons with the numbers.

    Too few runs in either cohort holds the stage for another soak; after `max_soaks`
    soaks that is a rollback (fail closed: no evidence is not good evidence).
    """
    need = gates.min_samples
    if candidate.runs < need or control.runs < need:
        counts = f"candidate {candidate.runs} runs, control {control.runs} runs (need {need} each)"
        if soak >= max_soaks:
            return "rollback", [f"not enough traffic after {soak} soaks: {counts}"]
        return "hold", [f"waiting for traffic: {counts}"]
    failures = health_failures(candidate, control, gates)
    if failures:
        return "rollback", failures
    return "promote", [_summary(candidate, control)]


def health_failures(candidate: CohortStats, control: CohortStats, gates: HealthGates) -> list[str]:
    """One line per failed gate, naming the gate, both numbers and the limit."""
    failures: list[str] = []
    drop = control.success_rate - candidate.success_rate
    if drop > gates.max_success_rate_drop + _SLACK:
        failures.append(
            f"success rate: candidate {candidate.success_rate:.1%} vs control "
            f"{control.success_rate:.1%} (drop {drop:.1%} > {gates.max_success_rate_drop:.1%})"
        )
    increase = candidate.safety_events_per_run - control.safety_events_per_run
    if increase > gates.max_safety_rate_increase + _SLACK:
        failures.append(
            f"safety events per run: candidate {candidate.safety_events_per_run:.3f} vs "
            f"control {control.safety_events_per_run:.3f} (increase {increase:.3f} > "
            f"{gates.max_safety_rate_increase:.3f})"
        )
    cost = _ratio_failure(
        "cost per successful run",
        candidate.cost_per_success_usd,
        control.cost_per_success_usd,
        gates.max_cost_ratio,
        unit="$",
    )
    latency = _ratio_failure(
        "median latency",
        candidate.median_latency_s,
        control.median_latency_s,
        gates.max_latency_ratio,
        unit="s",
    )
    return failures + [f for f in (cost, latency) if f is not None]


def _ratio_failure(
    gate: str, candidate: float | None, control: float | None, limit: float, *, unit: str
) -> str | None:
    """Why candidate/control exceeds `limit`, or None. A control of zero (free or instant)
    only passes a candidate of zero; a cohort with no successful run has no cost per
    success, and the success-rate gate already judges it."""
    if candidate is None or control is None:
        return None
    shown = f"candidate {_amount(candidate, unit)} vs control {_amount(control, unit)}"
    if control <= 0:
        return None if candidate <= 0 else f"{gate}: {shown} (control is zero)"
    ratio = candidate / control
    if ratio > limit + _SLACK:
        return f"{gate}: {shown} (ratio {ratio:.2f} > {limit:.2f})"
    return None


def _amount(value: float, unit: str) -> str:
    return f"${value:.4f}" if unit == "$" else f"{value:.2f}s"


def _summary(candidate: CohortStats, control: CohortStats) -> str:
    return (
        f"all gates passed: success {candidate.success_rate:.1%} vs {control.success_rate:.1%}, "
        f"safety/run {candidate.safety_events_per_run:.3f} vs "
        f"{control.safety_events_per_run:.3f}, runs {candidate.runs} vs {control.runs}"
    )
