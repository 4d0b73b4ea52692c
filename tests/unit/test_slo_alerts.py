"""What the SLO monitor alerts on besides burn rates (signals, automatic triggers, backlog),
which open incident covers which alert, and the incident request an alert becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows.sli_types import AffectedRuns, AgentSlis, SliSnapshot, SloWindowCounts
from workflows.slo_alerts import alerts_of, incident_request, is_covered
from workflows.slo_monitor_types import MonitorAlert
from workflows.slo_policy import windows_needed
from workflows.slo_types import (
    AlertPolicy,
    BacklogStats,
    SignalThresholds,
    SliCounts,
    Slo,
    SloKind,
    WindowStats,
)

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
QUIET = WindowStats(runs=100, completed=99, failed=1, tool_calls=300, cost_usd=0.5, tokens=1000)


def snapshot(**agent: object) -> SliSnapshot:
    fields = {"agent": "a", "current": QUIET, "baseline": QUIET, **agent}
    return SliSnapshot(as_of=NOW, agents=[AgentSlis.model_validate(fields)])


def alerts(snap: SliSnapshot) -> list[MonitorAlert]:
    return alerts_of(snap, min_events=10, backlog=SignalThresholds())


def test_quiet_agent_raises_nothing() -> None:
    assert alerts(snapshot()) == []


def test_cost_rate_trigger_fires_at_its_limit_and_not_when_off() -> None:
    # 30-minute window: $5 in it is $10 an hour, the default limit.
    costly = QUIET.model_copy(update={"cost_usd": 5.0})
    [alert] = alerts(snapshot(current=costly, baseline=costly))
    assert (alert.dedup_key, alert.kind, alert.user_impact) == ("a:cost_rate", "cost_rate", "none")
    assert alert.numbers["value"] == 10.0 and alert.cost_usd_per_hour == 10.0
    off = AlertPolicy(cost_usd_per_hour=0)
    assert alerts(snapshot(current=costly, baseline=costly, alerts=off)) == []


def test_safety_rate_trigger_is_a_safety_incident_and_needs_enough_runs() -> None:
    unsafe = QUIET.model_copy(update={"safety_events": 30})
    found = {a.kind: a for a in alerts(snapshot(current=unsafe))}
    assert found["safety_rate"].is_safety and found["safety_rate"].user_impact == "some"
    # The spike against the baseline is a signal of its own, also a safety matter.
    assert found["signal"].name == "safety_spike" and found["signal"].is_safety
    few = unsafe.model_copy(update={"runs": 5, "completed": 5, "failed": 0})
    assert all(a.kind != "safety_rate" for a in alerts(snapshot(current=few)))


def test_tool_failure_rate_counts_errors_and_timeouts_together() -> None:
    failing = QUIET.model_copy(update={"tool_errors": 40, "tool_timeouts": 40})
    kinds = [a.dedup_key for a in alerts(snapshot(current=failing, baseline=QUIET))]
    assert "a:tool_failure_rate" in kinds
    assert "a:signal:tool_error_spike" in kinds and "a:signal:tool_timeout_spike" in kinds


def test_a_success_drop_blames_the_failed_runs_of_the_alert_window() -> None:
    dropping = QUIET.model_copy(update={"completed": 70, "failed": 30})
    [alert] = alerts(snapshot(current=dropping))
    assert alert.dedup_key == "a:signal:success_drop"
    assert alert.bad is not None and alert.bad.kind == "failed"
    assert alert.since == NOW - timedelta(minutes=30)


def test_an_unreadable_agent_is_skipped_not_fatal() -> None:
    snap = snapshot()
    snap.agents.append(AgentSlis(agent="broken", problem="agents/broken.toml: bad"))
    assert alerts(snap) == []


def test_backlog_is_a_queue_alert_for_every_agent() -> None:
    snap = SliSnapshot(
        as_of=NOW,
        backlogs=[BacklogStats(task_queue="q1 (workflow tasks)", backlog=500)],
    )
    [alert] = alerts(snap)
    assert alert.dedup_key == "queue:q1-workflow-tasks:backlog_size" and alert.agent == "*"


def burning(slo: Slo, long_bad: int, short_bad: int) -> list[SloWindowCounts]:
    """100 events in every window; the 3d/6h pair at `long_bad`/`short_bad` bad events,
    the page pairs quiet."""
    bad = {timedelta(days=3): long_bad, timedelta(hours=6): short_bad}
    return [
        SloWindowCounts(
            slo=slo.name,
            window_seconds=int(w.total_seconds()),
            counts=SliCounts(good=100 - bad.get(w, 0), total=100),
        )
        for w in windows_needed()
    ]


def test_a_ticket_has_its_own_key_and_an_open_page_covers_it() -> None:
    slo = Slo(name="success", kind=SloKind.TASK_SUCCESS, objective=0.95)
    [ticket] = alerts(snapshot(slos=[slo], counts=burning(slo, 6, 6)))
    assert (ticket.action, ticket.dedup_key) == ("ticket", "a:slo:success:ticket")
    assert ticket.user_impact == "some"
    assert is_covered(ticket, {"a:slo:success"})
    assert is_covered(ticket, {"a:slo:success:ticket"})
    assert not is_covered(ticket, {"a:slo:latency"})


def test_an_open_ticket_or_signal_never_covers_a_page() -> None:
    page = MonitorAlert(
        dedup_key="a:slo:success",
        agent="a",
        kind="slo_burn",
        name="success",
        action="page",
        title="t",
        detail="d",
        since=NOW,
    )
    assert not is_covered(page, {"a:slo:success:ticket", "a:signal:success_drop"})
    assert is_covered(page, {"a:slo:success"})


def test_the_request_carries_the_alert_the_runs_and_the_first_bad_outcome() -> None:
    dropping = QUIET.model_copy(update={"completed": 70, "failed": 30})
    [alert] = alerts(snapshot(current=dropping))
    first = NOW - timedelta(minutes=20)
    request = incident_request(
        alert, AffectedRuns(run_ids=["r2", "r1"], first_bad_at=first, count=30), NOW
    )
    assert request.dedup_key == alert.dedup_key and request.agent == "a"
    assert request.trigger.kind == "signal" and request.trigger.detected_at == NOW
    assert request.trigger.first_bad_at == first
    assert request.trigger.numbers == alert.numbers
    assert request.affected_run_ids == ["r2", "r1"] and request.user_impact == "some"
    assert incident_request(alert, None, NOW).trigger.first_bad_at is None
