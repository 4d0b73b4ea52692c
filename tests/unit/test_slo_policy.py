"""Burn-rate alerting, error budgets and what counts as a good event, per SLO kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows.payloads import RunOutcome
from workflows.slo_policy import (
    burn_rate,
    count_runs,
    error_budget,
    evaluate_burn,
    judge_run,
    judge_tool_call,
    windows_needed,
)
from workflows.slo_types import DEFAULT_BURN_POLICY, SliCounts, Slo, SloKind, format_window
from workflows.types import RunStatus, StopReason, Usage

SUCCESS = Slo(name="success", kind=SloKind.TASK_SUCCESS, objective=0.95)
M5, M30, H1, H6, D3 = (
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=3),
)


def counts(**error_ratios: float) -> dict[timedelta, SliCounts]:
    """1000 events in every window; the named ones (m5, h1...) with that share bad."""
    names = {"m5": M5, "m30": M30, "h1": H1, "h6": H6, "d3": D3}
    result = {window: SliCounts(good=1000, total=1000) for window in names.values()}
    for name, ratio in error_ratios.items():
        result[names[name]] = SliCounts(good=1000 - round(ratio * 1000), total=1000)
    return result


def pairs(alerts: list) -> set[tuple[str, str]]:
    return {(a.window.label, a.action) for a in alerts}


def test_burn_rate_is_error_ratio_over_budget() -> None:
    assert burn_rate(SliCounts(good=90, total=100), 0.95) == pytest.approx(2.0)
    assert burn_rate(SliCounts(good=0, total=0), 0.95) == 0.0


def test_rising_failure_rate_fires_the_fast_page_pair() -> None:
    # 100% failures for the last hour: 20x burn in both 1h and 5m, 1/6 of 6h.
    alerts = evaluate_burn(SUCCESS, counts(m5=1.0, h1=1.0, m30=1.0, h6=0.17, d3=0.02))
    assert pairs(alerts) == {("1h/5m", "page")}
    assert alerts[0].long_rate == pytest.approx(20.0)
    assert alerts[0].slo == "success" and alerts[0].kind is SloKind.TASK_SUCCESS


def test_sustained_burn_fires_the_slow_page_pair_too_pages_first() -> None:
    alerts = evaluate_burn(SUCCESS, counts(m5=0.8, h1=0.8, m30=0.8, h6=0.5, d3=0.1))
    assert pairs(alerts) == {("1h/5m", "page"), ("6h/30m", "page"), ("3d/6h", "ticket")}
    assert [a.action for a in alerts] == ["page", "page", "ticket"]


def test_short_blip_does_not_page() -> None:
    # Five bad minutes: the 5m window burns at 20x, the hour only at ~1.7x.
    assert evaluate_burn(SUCCESS, counts(m5=1.0, h1=0.083, m30=0.17, h6=0.014)) == []


def test_old_burn_no_longer_confirmed_by_the_short_window_does_not_page() -> None:
    # The last hour burned at 20x but the last 5 minutes are clean: it is over.
    assert evaluate_burn(SUCCESS, counts(h1=1.0, m5=0.0, m30=0.0, h6=0.17, d3=0.01)) == []


def test_ticket_pair_fires_at_exactly_one_times_budget() -> None:
    alerts = evaluate_burn(SUCCESS, counts(d3=0.05, h6=0.05))
    assert pairs(alerts) == {("3d/6h", "ticket")}
    assert evaluate_burn(SUCCESS, counts(d3=0.049, h6=0.05)) == []


def test_one_bad_run_out_of_one_does_not_page() -> None:
    few = {window: SliCounts(good=0, total=1) for window in windows_needed()}
    assert evaluate_burn(SUCCESS, few) == []
    assert evaluate_burn(SUCCESS, few, min_events=1) != []


def test_an_empty_short_window_does_not_confirm() -> None:
    windows = counts(h1=1.0)
    windows[M5] = SliCounts(good=0, total=0)
    assert evaluate_burn(SUCCESS, windows) == []


def test_a_missing_window_is_a_caller_bug_named_in_the_error() -> None:
    windows = counts()
    del windows[M30]
    with pytest.raises(ValueError, match="0:30:00"):
        evaluate_burn(SUCCESS, windows)


def test_windows_needed_lists_each_window_once_shortest_first_with_slo_windows() -> None:
    assert windows_needed() == [M5, M30, H1, H6, D3]
    seven_days = Slo(name="weekly", kind=SloKind.TASK_SUCCESS, objective=0.9, window_days=7)
    assert windows_needed(DEFAULT_BURN_POLICY, [SUCCESS, seven_days])[-2:] == [
        timedelta(days=7),
        timedelta(days=30),
    ]
    assert [format_window(w) for w in windows_needed()] == ["5m", "30m", "1h", "6h", "3d"]


def test_error_budget_is_the_share_of_allowed_bad_events_left() -> None:
    # 1000 events at 95%: 50 may be bad.
    assert error_budget(SUCCESS, SliCounts(good=1000, total=1000)).remaining == 1.0
    assert error_budget(SUCCESS, SliCounts(good=980, total=1000)).remaining == pytest.approx(0.6)
    assert error_budget(SUCCESS, SliCounts(good=950, total=1000)).remaining == pytest.approx(0.0)
    overspent = error_budget(SUCCESS, SliCounts(good=900, total=1000))
    assert overspent.remaining == pytest.approx(-1.0)
    assert (overspent.objective, overspent.good, overspent.total) == (0.95, 900, 1000)
    assert error_budget(SUCCESS, SliCounts(good=0, total=0)).remaining == 1.0


def outcome(
    status: RunStatus,
    *,
    seconds: float = 10,
    cost: float = 0.01,
    safety: int = 0,
    stop: StopReason | None = None,
) -> RunOutcome:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return RunOutcome(
        run_id="r",
        agent="a",
        variant="control",
        status=status,
        stop_reason=stop,
        steps=1,
        usage=Usage(cost_usd=cost),
        safety_events=safety,
        started_at=start,
        ended_at=start + timedelta(seconds=seconds),
    )


def test_task_success_ignores_runs_a_human_ended_and_counts_other_ends_as_bad() -> None:
    runs = [
        outcome(RunStatus.COMPLETED),
        outcome(RunStatus.REJECTED, stop=StopReason.APPROVAL_REJECTED),
        outcome(RunStatus.HALTED, stop=StopReason.HALT),
        outcome(RunStatus.FAILED, stop=StopReason.MODEL_ERROR),
        outcome(RunStatus.TIMED_OUT, stop=StopReason.RUN_TIMEOUT),
        outcome(RunStatus.BUDGET_EXCEEDED, stop=StopReason.MAX_STEPS),
        outcome(RunStatus.RUNNING),
    ]
    assert count_runs(SUCCESS, runs) == SliCounts(good=1, total=4)


def test_latency_and_cost_count_completed_runs_against_their_threshold() -> None:
    latency = Slo(name="l", kind=SloKind.LATENCY, objective=0.95, threshold_seconds=120)
    cost = Slo(name="c", kind=SloKind.COST_PER_SUCCESS, objective=0.95, threshold_usd=0.05)
    assert judge_run(latency, outcome(RunStatus.COMPLETED, seconds=120)) is True
    assert judge_run(latency, outcome(RunStatus.COMPLETED, seconds=121)) is False
    assert judge_run(latency, outcome(RunStatus.FAILED, seconds=500)) is None
    assert judge_run(cost, outcome(RunStatus.COMPLETED, cost=0.05)) is True
    assert judge_run(cost, outcome(RunStatus.COMPLETED, cost=0.06)) is False
    assert judge_run(cost, outcome(RunStatus.FAILED, cost=0.5)) is None


def test_safety_counts_every_ended_run_good_without_a_safety_event() -> None:
    safety = Slo(name="s", kind=SloKind.SAFETY_EVENT_RATE, objective=0.99)
    runs = [outcome(RunStatus.COMPLETED), outcome(RunStatus.HALTED, safety=2)]
    assert count_runs(safety, runs) == SliCounts(good=1, total=2)


def test_tool_timeouts_are_counted_apart_from_tool_errors() -> None:
    errors = Slo(name="e", kind=SloKind.TOOL_ERROR_RATE, objective=0.99)
    timeouts = Slo(name="t", kind=SloKind.TOOL_TIMEOUT_RATE, objective=0.995)
    assert [judge_tool_call(errors, o) for o in ("ok", "error", "raised", "timeout")] == [
        True,
        False,
        False,
        None,
    ]
    assert [judge_tool_call(timeouts, o) for o in ("ok", "error", "timeout")] == [
        True,
        True,
        False,
    ]
    assert judge_run(errors, outcome(RunStatus.COMPLETED)) is None
