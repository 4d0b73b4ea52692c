"""Burn-rate alerting and error budgets for SLOs, as pure functions a workflow may call.

The policy is the multiwindow, multi-burn-rate one of the Google SRE workbook: page when 2%
of a 30-day budget burns in an hour or 5% in six hours, open a ticket when 10% burns in
three days; each long window is confirmed by a short one so alerts stop soon after the burn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from workflows.payloads import RunOutcome
from workflows.slo_types import (
    DEFAULT_BURN_POLICY,
    DEFAULT_MIN_EVENTS,
    BurnAlert,
    BurnWindow,
    ErrorBudget,
    SliCounts,
    Slo,
    SloKind,
)
from workflows.types import RunStatus

# Runs a human ended: they say nothing about the agent's own reliability.
HUMAN_ENDED = frozenset({RunStatus.REJECTED, RunStatus.HALTED})

# Tool-call outcomes as the tool activity records them (`opsready.tool.calls{outcome}`).
TOOL_ERROR_OUTCOMES = frozenset({"error", "raised"})
TOOL_TIMEOUT_OUTCOME = "timeout"


def burn_rate(counts: SliCounts, objective: float) -> float:
    """How many times faster than sustainable the budget burns: 1.0 spends exactly the
    whole budget over the SLO window; 0 with no events."""
    return counts.burn_rate(objective)


def evaluate_burn(
    slo: Slo,
    counts_by_window: Mapping[timedelta, SliCounts],
    policy: Sequence[BurnWindow] = DEFAULT_BURN_POLICY,
    *,
    min_events: int = DEFAULT_MIN_EVENTS,
) -> list[BurnAlert]:
    """The window pairs of `policy` in which `slo` burns at >= their factor in BOTH windows,
    pages first. The long window needs `min_events` events, the short one at least one.

    `counts_by_window` must hold every window of `policy` (see `windows_needed`)."""
    alerts: list[BurnAlert] = []
    for window in policy:
        long_counts = _counts(counts_by_window, window.long)
        short_counts = _counts(counts_by_window, window.short)
        if window.is_burning(long_counts, short_counts, slo.objective, min_events):
            alerts.append(
                BurnAlert(
                    slo=slo.name,
                    kind=slo.kind,
                    window=window,
                    long_rate=burn_rate(long_counts, slo.objective),
                    short_rate=burn_rate(short_counts, slo.objective),
                    action=window.action,
                )
            )
    return sorted(alerts, key=lambda alert: alert.action != "page")


def _counts(counts_by_window: Mapping[timedelta, SliCounts], window: timedelta) -> SliCounts:
    try:
        return counts_by_window[window]
    except KeyError:
        raise ValueError(f"no SLI counts for the {window} window (see windows_needed)") from None


def error_budget(slo: Slo, counts: SliCounts) -> ErrorBudget:
    """What is left of `slo`'s budget given the counts over its whole window."""
    return ErrorBudget.of(slo.objective, counts)


def windows_needed(
    policy: Sequence[BurnWindow] = DEFAULT_BURN_POLICY, slos: Iterable[Slo] = ()
) -> list[timedelta]:
    """Every window the monitor must count SLIs over, shortest first: both windows of each
    pair, plus each SLO's own window (for its error budget)."""
    windows = {w for pair in policy for w in (pair.long, pair.short)}
    windows.update(slo.window for slo in slos)
    return sorted(windows)


def judge_run(slo: Slo, outcome: RunOutcome) -> bool | None:
    """Whether one ended run is a good event of a run-level SLO; None when it is not an
    event of that SLO at all (see `SloKind`). Tool-level SLOs count tool calls: None."""
    status = outcome.status
    if slo.kind is SloKind.TASK_SUCCESS:
        if status in HUMAN_ENDED or not status.is_terminal:
            return None
        return status is RunStatus.COMPLETED
    if slo.kind is SloKind.SAFETY_EVENT_RATE:
        return outcome.safety_events == 0 if status.is_terminal else None
    if status is not RunStatus.COMPLETED:
        return None
    if slo.kind is SloKind.LATENCY:
        assert slo.threshold_seconds is not None  # the model requires it for latency
        return (outcome.ended_at - outcome.started_at).total_seconds() <= slo.threshold_seconds
    if slo.kind is SloKind.COST_PER_SUCCESS:
        assert slo.threshold_usd is not None  # the model requires it for cost
        return outcome.usage.cost_usd <= slo.threshold_usd
    return None


def judge_tool_call(slo: Slo, outcome: str) -> bool | None:
    """Whether one tool call (by its recorded outcome) is a good event of a tool-level SLO;
    None when it is not an event of that SLO (timeouts are not events of the error SLO)."""
    if slo.kind is SloKind.TOOL_ERROR_RATE:
        return None if outcome == TOOL_TIMEOUT_OUTCOME else outcome not in TOOL_ERROR_OUTCOMES
    if slo.kind is SloKind.TOOL_TIMEOUT_RATE:
        return outcome != TOOL_TIMEOUT_OUTCOME
    return None


def count_runs(slo: Slo, outcomes: Iterable[RunOutcome]) -> SliCounts:
    """Good and total events of a run-level SLO over some runs."""
    verdicts = [v for v in (judge_run(slo, o) for o in outcomes) if v is not None]
    return SliCounts(good=sum(verdicts), total=len(verdicts))
