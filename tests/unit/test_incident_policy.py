"""The incident policy: severity per matrix row, runbook step modes, escalation, timings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workflows.incident_config_types import OnCallRota, Runbook, SeverityMatrix
from workflows.incident_policy import (
    classify,
    merge_join,
    mttd,
    mttr,
    next_escalation_at,
    next_page,
)
from workflows.incident_runbooks import automatic_steps, check_run_step, plan_steps
from workflows.incident_types import (
    IncidentTrigger,
    JoinRequest,
    OpenIncidentRequest,
    PageRecord,
    RunStepRequest,
    Severity,
    StepRun,
    TriggerKind,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MATRIX = SeverityMatrix()


def request(**fields: Any) -> OpenIncidentRequest:
    trigger = IncidentTrigger(
        kind=fields.pop("kind", "slo_burn"), agent="support-triage", detected_at=T0
    )
    return OpenIncidentRequest(
        dedup_key="support-triage:slo", title="t", agent="support-triage", trigger=trigger, **fields
    )


# --- severity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"is_safety": True, "user_impact": "some"}, Severity.SEV1),
        ({"is_safety": True, "user_impact": "many"}, Severity.SEV1),
        ({"user_impact": "many"}, Severity.SEV2),
        ({"is_safety": True}, Severity.SEV2),
        ({"cost_usd_per_hour": 50.0}, Severity.SEV2),
        ({"cost_usd_per_hour": 5.0}, Severity.SEV3),
        ({"user_impact": "some"}, Severity.SEV3),
        ({"cost_usd_per_hour": 4.99}, Severity.SEV4),
        ({}, Severity.SEV4),
    ],
)
def test_default_matrix_classifies_each_row(fields: dict[str, Any], expected: Severity) -> None:
    assert classify(MATRIX, request(**fields)) == expected


def test_first_matching_rule_wins_over_a_later_worse_one() -> None:
    matrix = SeverityMatrix.model_validate(
        {
            "rules": [
                {"severity": "SEV3", "min_user_impact": "some"},
                {"severity": "SEV1", "min_user_impact": "many"},
            ]
        }
    )
    assert classify(matrix, request(user_impact="many")) == Severity.SEV3


def test_rule_on_trigger_kind_matches_only_that_kind() -> None:
    matrix = SeverityMatrix.model_validate(
        {
            "rules": [{"severity": "SEV2", "trigger_kinds": ["tool_failure_rate"]}],
            "default_severity": "SEV3",
        }
    )
    assert classify(matrix, request(kind="tool_failure_rate")) == Severity.SEV2
    assert classify(matrix, request(kind="slo_burn")) == Severity.SEV3


def test_a_level_table_overrides_only_the_fields_it_names() -> None:
    matrix = SeverityMatrix.model_validate({"levels": {"SEV2": {"auto_actions_allowed": True}}})
    assert matrix.level(Severity.SEV2).auto_actions_allowed is True
    assert matrix.level(Severity.SEV2).ack_deadline == timedelta(minutes=15)


def test_severity_rank_orders_sev1_as_worst() -> None:
    assert [s.rank for s in Severity] == [1, 2, 3, 4]
    assert Severity.SEV1.is_at_least(Severity.SEV2)
    assert not Severity.SEV3.is_at_least(Severity.SEV2)


def test_a_repeated_alert_can_only_make_the_incident_worse() -> None:
    first = request(user_impact="some", cost_usd_per_hour=10.0, affected_run_ids=["r1"])
    join = JoinRequest(
        trigger=first.trigger,
        user_impact="none",
        is_safety=True,
        cost_usd_per_hour=2.0,
        affected_run_ids=["r1", "r2"],
    )
    merged = merge_join(first, join)
    assert (merged.user_impact, merged.is_safety, merged.cost_usd_per_hour) == ("some", True, 10.0)
    assert merged.affected_run_ids == ["r1", "r2"]
    assert classify(MATRIX, merged) == Severity.SEV1


# --- runbooks ------------------------------------------------------------------------------

RUNBOOK = Runbook.model_validate(
    {
        "name": "support-triage",
        "version": "1",
        "agent": "support-triage",
        "automatic_on": [{"trigger": "safety_rate", "severity": "SEV2"}],
        "steps": [
            {"id": "stop-refunds", "action": "engage_kill_switch", "target": "tool:refund_order"},
            {"id": "pause", "action": "pause_agent", "target": "agent:{agent}", "is_risky": True},
        ],
    }
)


def plan(
    severity: Severity, trigger: TriggerKind = "safety_rate", is_safety: bool = False
) -> dict[str, str]:
    steps = plan_steps(
        [RUNBOOK],
        MATRIX,
        agent="support-triage",
        severity=severity,
        trigger=trigger,
        is_safety=is_safety,
    )
    return {step.key: step.mode for step in steps}


def test_sev1_safety_incident_engages_the_agent_kill_switch_at_once() -> None:
    steps = plan_steps(
        [], MATRIX, agent="support-triage", severity=Severity.SEV1, trigger="signal", is_safety=True
    )
    [kill] = automatic_steps(steps)
    assert (kill.action, kill.target, kill.mode) == (
        "engage_kill_switch",
        "agent:support-triage",
        "automatic",
    )


def test_kill_switch_is_not_automatic_below_sev1_or_without_safety() -> None:
    for severity, is_safety in ((Severity.SEV2, True), (Severity.SEV1, False)):
        steps = plan_steps(
            [], MATRIX, agent="a", severity=severity, trigger="signal", is_safety=is_safety
        )
        assert steps == []


def test_risky_step_needs_approval_when_the_severity_forbids_auto_actions() -> None:
    assert plan(Severity.SEV2) == {
        "support-triage/stop-refunds": "automatic",
        "support-triage/pause": "needs_approval",
    }


def test_risky_step_runs_automatically_when_the_severity_allows_auto_actions() -> None:
    modes = plan(Severity.SEV1)
    assert modes["support-triage/pause"] == "automatic"


def test_steps_wait_for_a_request_when_the_runbook_is_not_automatic_for_the_trigger() -> None:
    assert plan(Severity.SEV2, trigger="cost_rate") == {
        "support-triage/stop-refunds": "on_request",
        "support-triage/pause": "needs_approval",
    }
    assert plan(Severity.SEV3)["support-triage/stop-refunds"] == "on_request"


def test_agent_placeholder_and_other_agents_runbooks() -> None:
    steps = plan_steps(
        [RUNBOOK],
        MATRIX,
        agent="support-triage",
        severity=Severity.SEV3,
        trigger="manual",
        is_safety=False,
    )
    assert steps[-1].target == "agent:support-triage"
    assert (
        plan_steps(
            [RUNBOOK],
            MATRIX,
            agent="other",
            severity=Severity.SEV1,
            trigger="manual",
            is_safety=False,
        )
        == []
    )


def test_fail_closed_kill_switch_is_not_repeated_by_the_runbook() -> None:
    runbook = RUNBOOK.model_copy(
        update={
            "steps": [
                *RUNBOOK.steps,
                RUNBOOK.steps[0].model_copy(update={"id": "kill", "target": "agent:{agent}"}),
            ]
        }
    )
    steps = plan_steps(
        [runbook],
        MATRIX,
        agent="support-triage",
        severity=Severity.SEV1,
        trigger="safety_rate",
        is_safety=True,
    )
    kills = [
        s for s in steps if s.target == "agent:support-triage" and s.action == "engage_kill_switch"
    ]
    assert [s.key for s in kills] == ["fail-closed/kill-switch"]


def test_run_step_refuses_a_risky_step_without_a_second_person() -> None:
    steps = plan_steps(
        [RUNBOOK],
        MATRIX,
        agent="support-triage",
        severity=Severity.SEV2,
        trigger="safety_rate",
        is_safety=False,
    )
    with pytest.raises(ValueError, match="needs approved_by"):
        check_run_step(steps, RunStepRequest(step="support-triage/pause", by="alice"), [])
    with pytest.raises(ValueError, match="someone other than alice"):
        check_run_step(
            steps, RunStepRequest(step="support-triage/pause", by="alice", approved_by="alice"), []
        )
    approved = RunStepRequest(step="support-triage/pause", by="alice", approved_by="bob")
    assert check_run_step(steps, approved, []).action == "pause_agent"


def test_run_step_refuses_unknown_and_already_run_steps() -> None:
    steps = plan_steps(
        [RUNBOOK],
        MATRIX,
        agent="support-triage",
        severity=Severity.SEV3,
        trigger="manual",
        is_safety=False,
    )
    with pytest.raises(ValueError, match="unknown step 'nope'"):
        check_run_step(steps, RunStepRequest(step="nope", by="alice"), [])
    done = StepRun(
        step="support-triage/stop-refunds",
        action="engage_kill_switch",
        target="tool:refund_order",
        by="alice",
        at=T0,
    )
    with pytest.raises(ValueError, match="already run"):
        check_run_step(steps, RunStepRequest(step="support-triage/stop-refunds", by="bob"), [done])
    failed = done.model_copy(update={"is_ok": False})
    assert check_run_step(
        steps, RunStepRequest(step="support-triage/stop-refunds", by="bob"), [failed]
    )


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"id": "x", "action": "rollback_flag", "target": "agent:a"},
            "rollback_flag targets flag:NAME",
        ),
        ({"id": "x", "action": "engage_kill_switch", "target": "tool:"}, "agent:NAME or tool:NAME"),
        ({"id": "x", "action": "reboot", "target": "agent:a"}, "Input should be"),
    ],
)
def test_runbook_step_refuses_a_target_that_does_not_fit_its_action(
    step: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Runbook.model_validate({"name": "r", "version": "1", "steps": [step]})


# --- escalation ----------------------------------------------------------------------------

ROTA = OnCallRota(owner="team", tiers=[["ann"], ["ben", "cat"], ["dan"]])
SEV2 = MATRIX.level(Severity.SEV2)  # 15 minutes, 3 tiers


def page(tier: int, at: datetime) -> PageRecord:
    return PageRecord(tier=tier, target=ROTA.tiers[tier - 1][0], at=at)


def test_first_page_goes_to_tier_one_at_once() -> None:
    decision = next_page(ROTA, SEV2, [], T0)
    assert decision is not None and (decision.tier, decision.targets) == (1, ["ann"])


def test_escalation_pages_the_next_tier_after_the_ack_deadline() -> None:
    paged = [page(1, T0)]
    assert next_page(ROTA, SEV2, paged, T0 + timedelta(minutes=14, seconds=59)) is None
    decision = next_page(ROTA, SEV2, paged, T0 + timedelta(minutes=15))
    assert decision is not None and (decision.tier, decision.targets) == (2, ["ben", "cat"])
    assert next_escalation_at(ROTA, SEV2, paged) == T0 + timedelta(minutes=15)


def test_an_acknowledged_incident_pages_nobody_else() -> None:
    later = T0 + timedelta(hours=1)
    assert next_page(ROTA, SEV2, [page(1, T0)], later, is_acknowledged=True) is None
    assert next_escalation_at(ROTA, SEV2, [page(1, T0)], is_acknowledged=True) is None


def test_escalation_stops_at_the_last_tier_the_severity_allows() -> None:
    sev3 = MATRIX.level(Severity.SEV3)  # 2 tiers
    paged = [page(1, T0), page(2, T0 + timedelta(hours=1))]
    assert next_page(ROTA, sev3, paged, T0 + timedelta(days=1)) is None
    assert next_escalation_at(ROTA, sev3, paged) is None
    all_tiers = [*paged, page(3, T0 + timedelta(hours=2))]
    assert next_page(ROTA, SEV2, all_tiers, T0 + timedelta(days=1)) is None


def test_rota_refuses_an_empty_tier() -> None:
    with pytest.raises(ValueError, match=r"tiers\[1\] needs at least one"):
        OnCallRota(owner="team", tiers=[["ann"], []])


# --- timings -------------------------------------------------------------------------------


def test_mttd_and_mttr_in_seconds() -> None:
    assert mttd(T0, T0 + timedelta(minutes=4, seconds=30)) == 270.0
    assert mttd(None, T0) is None
    assert mttr(T0, T0 + timedelta(hours=1)) == 3600.0
    assert mttr(T0, None) is None


def test_mttd_never_negative_when_clocks_disagree() -> None:
    assert mttd(T0 + timedelta(seconds=5), T0) == 0.0
