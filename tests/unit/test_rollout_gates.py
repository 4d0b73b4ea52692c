"""The canary health gates as a pure function: promote, hold, roll back, and why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.rollout_gates import judge_stage
from workflows.rollout_types import CohortStats, HealthGates, RolloutPlan, RolloutRequest

GATES = HealthGates(min_samples=20)


def stats(
    runs: int = 100,
    success_rate: float = 0.95,
    safety: float = 0.0,
    cost: float | None = 0.01,
    latency: float = 2.0,
) -> CohortStats:
    return CohortStats(
        runs=runs,
        successes=round(runs * success_rate),
        success_rate=success_rate,
        safety_events_per_run=safety,
        cost_per_success_usd=cost,
        median_latency_s=latency,
    )


def test_healthy_candidate_is_promoted_with_the_numbers() -> None:
    verdict, reasons = judge_stage(stats(runs=40), stats(), GATES)
    assert verdict == "promote"
    assert reasons == [
        "all gates passed: success 95.0% vs 95.0%, safety/run 0.000 vs 0.000, runs 40 vs 100"
    ]


def test_limits_themselves_pass() -> None:
    candidate = stats(success_rate=0.90, safety=0.05, cost=0.015, latency=3.0)
    verdict, _ = judge_stage(candidate, stats(), GATES)
    assert verdict == "promote"


@pytest.mark.parametrize(("candidate_runs", "control_runs"), [(19, 100), (100, 19), (0, 0)])
def test_small_samples_hold_the_stage(candidate_runs: int, control_runs: int) -> None:
    verdict, reasons = judge_stage(
        stats(runs=candidate_runs, success_rate=0.0),
        stats(runs=control_runs),
        GATES,
        soak=2,
        max_soaks=6,
    )
    assert verdict == "hold"
    assert reasons == [
        f"waiting for traffic: candidate {candidate_runs} runs, control {control_runs} runs "
        "(need 20 each)"
    ]


def test_small_samples_after_the_last_soak_roll_back() -> None:
    verdict, reasons = judge_stage(stats(runs=5), stats(), GATES, soak=6, max_soaks=6)
    assert verdict == "rollback"
    assert reasons[0].startswith("not enough traffic after 6 soaks: candidate 5 runs")


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (
            stats(success_rate=0.80),
            "success rate: candidate 80.0% vs control 95.0% (drop 15.0% > 5.0%)",
        ),
        (
            stats(safety=0.30),
            "safety events per run: candidate 0.300 vs control 0.000 (increase 0.300 > 0.050)",
        ),
        (
            stats(cost=0.02),
            "cost per successful run: candidate $0.0200 vs control $0.0100 (ratio 2.00 > 1.50)",
        ),
        (
            stats(latency=4.0),
            "median latency: candidate 4.00s vs control 2.00s (ratio 2.00 > 1.50)",
        ),
    ],
)
def test_each_failing_gate_rolls_back_naming_gate_and_numbers(
    candidate: CohortStats, reason: str
) -> None:
    verdict, reasons = judge_stage(candidate, stats(), GATES)
    assert (verdict, reasons) == ("rollback", [reason])


def test_every_failing_gate_is_reported() -> None:
    candidate = stats(success_rate=0.5, safety=1.0, cost=0.1, latency=10.0)
    verdict, reasons = judge_stage(candidate, stats(), GATES)
    assert verdict == "rollback"
    assert [r.split(":")[0] for r in reasons] == [
        "success rate",
        "safety events per run",
        "cost per successful run",
        "median latency",
    ]


def test_free_control_only_passes_a_free_candidate() -> None:
    assert judge_stage(stats(cost=0.0), stats(cost=0.0), GATES)[0] == "promote"
    verdict, reasons = judge_stage(stats(cost=0.01), stats(cost=0.0), GATES)
    assert verdict == "rollback"
    assert reasons == [
        "cost per successful run: candidate $0.0100 vs control $0.0000 (control is zero)"
    ]


def test_candidate_without_successes_fails_on_success_rate_not_cost() -> None:
    verdict, reasons = judge_stage(stats(success_rate=0.0, cost=None), stats(), GATES)
    assert verdict == "rollback"
    assert [r.split(":")[0] for r in reasons] == ["success rate"]


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([], "at least one stage"),
        ([5, 1, 100], "stages must increase"),
        ([1, 50], "the last stage must be 100"),
        ([0, 100], "percentage in (0, 100]"),
        ([1, 150], "percentage in (0, 100]"),
    ],
)
def test_plan_stages_must_climb_to_100(stages: list[float], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("]", r"\]")):
        RolloutPlan(stages=stages)


def test_request_needs_an_approver_and_distinct_variations() -> None:
    with pytest.raises(ValidationError, match="approvers"):
        RolloutRequest(flag="f", candidate_variation=1, requested_by="me", approvers=[])
    with pytest.raises(ValidationError, match="must differ"):
        RolloutRequest(
            flag="f", candidate_variation=1, control_variation=1, requested_by="me", approvers=["a"]
        )
