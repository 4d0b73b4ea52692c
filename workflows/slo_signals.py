"""The playbook's early-warning signals as pure detectors: a current window against a
baseline window (success drop, safety/tool-error/timeout spikes, cost, tokens, latency) and
a task queue's backlog against fixed limits. Usable inside workflows.
"""

from __future__ import annotations

from workflows.slo_types import (
    BacklogStats,
    SignalAlert,
    SignalName,
    SignalThresholds,
    WindowStats,
)


def detect_signals(
    current: WindowStats, baseline: WindowStats, thresholds: SignalThresholds | None = None
) -> list[SignalAlert]:
    """Every signal on which `current` is worse than `baseline` beyond its threshold.

    Run signals need `min_runs` runs in both windows, tool signals `min_tool_calls` calls,
    so a quiet hour is never compared with a busy day."""
    t = thresholds or SignalThresholds()
    alerts: list[SignalAlert | None] = []
    if current.runs >= t.min_runs and baseline.runs >= t.min_runs:
        alerts += [
            _success_drop(current, baseline, t),
            _rise(
                SignalName.SAFETY_SPIKE,
                current.safety_events / current.runs,
                baseline.safety_events / baseline.runs,
                t.safety_factor,
                t.safety_floor,
                "safety events per run",
            ),
            _rise(
                SignalName.COST_PER_TASK_RISE,
                current.cost_usd / current.runs,
                baseline.cost_usd / baseline.runs,
                t.cost_factor,
                0.0,
                "USD per run",
            ),
            _rise(
                SignalName.TOKENS_PER_TASK_RISE,
                current.tokens / current.runs,
                baseline.tokens / baseline.runs,
                t.tokens_factor,
                0.0,
                "tokens per run",
            ),
        ]
        if current.latency_p95_seconds is not None and baseline.latency_p95_seconds is not None:
            alerts.append(
                _rise(
                    SignalName.LATENCY_REGRESSION,
                    current.latency_p95_seconds,
                    baseline.latency_p95_seconds,
                    t.latency_factor,
                    t.latency_floor_seconds,
                    "p95 run latency (s)",
                )
            )
    if current.tool_calls >= t.min_tool_calls and baseline.tool_calls >= t.min_tool_calls:
        alerts += [
            _rise(
                SignalName.TOOL_ERROR_SPIKE,
                _per_call(current.tool_errors, current),
                _per_call(baseline.tool_errors, baseline),
                t.tool_error_factor,
                t.tool_error_floor,
                "tool errors per call (timeouts apart)",
            ),
            _rise(
                SignalName.TOOL_TIMEOUT_SPIKE,
                current.tool_timeouts / current.tool_calls,
                baseline.tool_timeouts / baseline.tool_calls,
                t.tool_timeout_factor,
                t.tool_timeout_floor,
                "tool timeouts per call",
            ),
        ]
    return [alert for alert in alerts if alert is not None]


def detect_backlog(
    backlog: BacklogStats, thresholds: SignalThresholds | None = None
) -> list[SignalAlert]:
    """Too many tasks waiting on a queue, or waiting too long: workers are missing or stuck."""
    t = thresholds or SignalThresholds()
    alerts = []
    if backlog.backlog >= t.max_backlog:
        alerts.append(
            SignalAlert(
                signal=SignalName.BACKLOG_SIZE,
                current=backlog.backlog,
                baseline=None,
                threshold=t.max_backlog,
                detail=f"{backlog.backlog} tasks waiting on {backlog.task_queue} "
                f"(limit {t.max_backlog})",
            )
        )
    if backlog.oldest_age_seconds >= t.max_backlog_age_seconds:
        alerts.append(
            SignalAlert(
                signal=SignalName.BACKLOG_AGE,
                current=backlog.oldest_age_seconds,
                baseline=None,
                threshold=t.max_backlog_age_seconds,
                detail=f"oldest task on {backlog.task_queue} waited "
                f"{backlog.oldest_age_seconds:.0f} s (limit {t.max_backlog_age_seconds:.0f} s)",
            )
        )
    return alerts


def _success_ratio(stats: WindowStats) -> float | None:
    counted = stats.completed + stats.failed
    return stats.completed / counted if counted else None


def _success_drop(
    current: WindowStats, baseline: WindowStats, t: SignalThresholds
) -> SignalAlert | None:
    now, before = _success_ratio(current), _success_ratio(baseline)
    if now is None or before is None:
        return None
    threshold = before - t.success_drop
    if now > threshold:
        return None
    return SignalAlert(
        signal=SignalName.SUCCESS_DROP,
        current=now,
        baseline=before,
        threshold=threshold,
        detail=f"task success {now:.1%} against {before:.1%} before "
        f"(alerts at a drop of {t.success_drop:.0%} points)",
    )


def _per_call(errors: int, stats: WindowStats) -> float:
    calls = stats.tool_calls - stats.tool_timeouts
    return errors / calls if calls > 0 else 0.0


def _rise(
    signal: SignalName, current: float, baseline: float, factor: float, floor: float, what: str
) -> SignalAlert | None:
    threshold = max(baseline * factor, baseline + floor)
    if current < threshold or current <= baseline:
        return None
    return SignalAlert(
        signal=signal,
        current=current,
        baseline=baseline,
        threshold=threshold,
        detail=f"{what}: {current:.4g} against {baseline:.4g} before (alerts at {threshold:.4g})",
    )
