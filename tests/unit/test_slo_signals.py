"""The early-warning signals: each fires past its threshold, stays quiet below it, and
never judges a window with fewer samples than the minimum."""

from __future__ import annotations

import pytest

from workflows.slo_signals import detect_backlog, detect_signals
from workflows.slo_types import BacklogStats, SignalName, SignalThresholds, WindowStats

# A healthy hour: 100 runs, 95 completed, 1 safety event, 200 tool calls, 2 errors and
# 1 timeout, 2 cents and 2000 tokens a run, p95 of 20 s.
BASELINE = WindowStats(
    runs=100,
    completed=95,
    failed=5,
    safety_events=1,
    tool_calls=200,
    tool_errors=2,
    tool_timeouts=1,
    cost_usd=2.0,
    tokens=200_000,
    latency_p95_seconds=20.0,
)


def signals(**changes: object) -> set[SignalName]:
    current = BASELINE.model_copy(update=changes)
    return {alert.signal for alert in detect_signals(current, BASELINE)}


def test_the_same_window_twice_raises_nothing() -> None:
    assert signals() == set()


@pytest.mark.parametrize(
    ("changes", "signal"),
    [
        ({"completed": 80, "failed": 20}, SignalName.SUCCESS_DROP),
        ({"safety_events": 5}, SignalName.SAFETY_SPIKE),
        ({"tool_errors": 15}, SignalName.TOOL_ERROR_SPIKE),
        ({"tool_timeouts": 8}, SignalName.TOOL_TIMEOUT_SPIKE),
        ({"cost_usd": 3.5}, SignalName.COST_PER_TASK_RISE),
        ({"tokens": 350_000}, SignalName.TOKENS_PER_TASK_RISE),
        ({"latency_p95_seconds": 35.0}, SignalName.LATENCY_REGRESSION),
    ],
)
def test_each_signal_fires_past_its_threshold(changes: dict, signal: SignalName) -> None:
    assert signals(**changes) == {signal}


@pytest.mark.parametrize(
    "changes",
    [
        {"completed": 88, "failed": 12},  # 7 points down: under the 10-point drop
        {"safety_events": 2},  # doubled, but only +0.01 a run (floor 0.02)
        {"tool_errors": 8},  # 4x, but +3 points (floor 5)
        {"tool_timeouts": 4},  # +1.5 points (floor 2)
        {"cost_usd": 2.9},  # 1.45x (factor 1.5)
        {"tokens": 290_000},
        {"latency_p95_seconds": 29.0},
    ],
)
def test_each_signal_stays_quiet_below_its_threshold(changes: dict) -> None:
    assert signals(**changes) == set()


def test_run_signals_need_the_minimum_runs_in_both_windows() -> None:
    few = WindowStats(runs=10, completed=0, failed=10, safety_events=10, cost_usd=10.0)
    assert detect_signals(few, BASELINE) == []
    assert detect_signals(BASELINE.model_copy(update={"completed": 50, "failed": 50}), few) == []
    lower = SignalThresholds(min_runs=10)
    assert SignalName.SUCCESS_DROP in {a.signal for a in detect_signals(few, BASELINE, lower)}


def test_tool_signals_need_the_minimum_tool_calls() -> None:
    current = BASELINE.model_copy(update={"tool_calls": 19, "tool_errors": 19})
    assert detect_signals(current, BASELINE) == []


def test_timeouts_do_not_count_as_tool_errors() -> None:
    # Half the calls time out: a timeout spike, not an error spike.
    assert signals(tool_timeouts=100) == {SignalName.TOOL_TIMEOUT_SPIKE}


def test_an_alert_says_what_it_compared() -> None:
    current = BASELINE.model_copy(update={"latency_p95_seconds": 60.0})
    (alert,) = detect_signals(current, BASELINE)
    assert (alert.current, alert.baseline, alert.threshold) == (60.0, 20.0, 30.0)
    assert "p95" in alert.detail and "60" in alert.detail


def test_backlog_fires_on_size_or_age_and_not_below() -> None:
    def fired(backlog: int, age: float) -> set[SignalName]:
        stats = BacklogStats(task_queue="opsready-agents", backlog=backlog, oldest_age_seconds=age)
        return {alert.signal for alert in detect_backlog(stats)}

    assert fired(99, 299) == set()
    assert fired(100, 0) == {SignalName.BACKLOG_SIZE}
    assert fired(1, 300) == {SignalName.BACKLOG_AGE}
    assert fired(500, 900) == {SignalName.BACKLOG_SIZE, SignalName.BACKLOG_AGE}
    custom = SignalThresholds(max_backlog=5)
    stats = BacklogStats(task_queue="q", backlog=5)
    assert [a.detail for a in detect_backlog(stats, custom)] == ["5 tasks waiting on q (limit 5)"]
