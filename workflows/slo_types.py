"""SLO data: what an objective is, the good/total counts it is measured on, burn-rate windows
and the alerts, budgets and signals derived from them. Travels in Temporal payloads.

Every SLO is a ratio of good events to total events over a window, so one error budget and
one set of burn-rate alerts fit them all. What an event is, per kind, is in `SloKind`.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class SloKind(StrEnum):
    """What an SLO counts. Runs ended by a human (`rejected`, `halted`) never count as bad.

    - `task_success`: events are runs that ended without a human stopping them (`completed`,
      `failed`, `timed_out`, `budget_exceeded`); good = `completed`.
    - `latency`: events are completed runs; good = start-to-end latency <= `threshold_seconds`
      (a "p95 within 120 s" objective is "95% of runs within 120 s"). Latency is wall clock,
      so a wait for a human approval counts.
    - `cost_per_success`: events are completed runs; good = the run's cost <= `threshold_usd`.
    - `tool_error_rate`: events are tool calls that did not time out; good = not errored.
    - `tool_timeout_rate`: events are all tool calls; good = not timed out (timeouts are
      counted apart from other errors: they point at a slow dependency, not a broken one).
    - `safety_event_rate`: events are ended runs; good = a run with no safety event.
    """

    TASK_SUCCESS = "task_success"
    LATENCY = "latency"
    COST_PER_SUCCESS = "cost_per_success"
    TOOL_ERROR_RATE = "tool_error_rate"
    TOOL_TIMEOUT_RATE = "tool_timeout_rate"
    SAFETY_EVENT_RATE = "safety_event_rate"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Slo(_Model):
    """One objective of one agent: `objective` of events are good over `window_days`."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    kind: SloKind
    objective: float
    window_days: int = 30
    threshold_seconds: float | None = Field(default=None, validate_default=True)
    threshold_usd: float | None = Field(default=None, validate_default=True)

    @field_validator("objective")
    @classmethod
    def _objective_is_a_fraction(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError("must be between 0 and 1 (e.g. 0.95)")
        return value

    @field_validator("window_days")
    @classmethod
    def _window_is_sane(cls, value: int) -> int:
        if not 1 <= value <= 90:
            raise ValueError("must be a whole number of days from 1 to 90 (e.g. 30)")
        return value

    @field_validator("threshold_seconds")
    @classmethod
    def _seconds_for_latency_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        return _threshold(value, info, SloKind.LATENCY, "threshold_seconds", "120")

    @field_validator("threshold_usd")
    @classmethod
    def _usd_for_cost_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        return _threshold(value, info, SloKind.COST_PER_SUCCESS, "threshold_usd", "0.05")

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)

    @property
    def error_budget(self) -> float:
        """The fraction of events allowed to be bad."""
        return budget_of(self.objective)


def _threshold(
    value: float | None, info: ValidationInfo, needs: SloKind, field: str, example: str
) -> float | None:
    kind = info.data.get("kind")
    if kind is None:  # the kind itself was invalid; that error is the one to show
        return value
    if kind is needs and value is None:
        raise ValueError(f"a {needs.value} SLO needs it (e.g. {field} = {example})")
    if kind is not needs and value is not None:
        raise ValueError(f"only {needs.value} SLOs take it: remove it")
    if value is not None and not value > 0:
        raise ValueError(f"must be greater than 0 (e.g. {example})")
    return value


class SliCounts(_Model):
    """Good and total events of one SLI over one window."""

    good: int = Field(ge=0)
    total: int = Field(ge=0)

    @field_validator("total")
    @classmethod
    def _total_covers_good(cls, value: int, info: ValidationInfo) -> int:
        if value < info.data.get("good", 0):
            raise ValueError("total must be at least good")
        return value

    @property
    def bad(self) -> int:
        return self.total - self.good

    @property
    def error_ratio(self) -> float:
        """Bad / total; 0 when there were no events (nothing happened, nothing burned)."""
        return self.bad / self.total if self.total else 0.0

    def __add__(self, other: SliCounts) -> SliCounts:
        return SliCounts(good=self.good + other.good, total=self.total + other.total)

    def burn_rate(self, objective: float) -> float:
        """How many times faster than sustainable the budget burns: 1.0 spends exactly the
        whole budget over the SLO window; 0 with no events."""
        return self.error_ratio / budget_of(objective)


BurnAction = Literal["page", "ticket"]


class BurnWindow(_Model):
    """A multiwindow burn-rate rule: alert when BOTH windows burn at >= `factor`.

    The long window says enough budget is gone to matter; the short one says it is still
    going (so an alert resolves soon after the burn stops)."""

    long: timedelta
    short: timedelta
    factor: float = Field(gt=0)
    action: BurnAction

    @property
    def label(self) -> str:
        return f"{format_window(self.long)}/{format_window(self.short)}"

    def is_burning(
        self, long: SliCounts, short: SliCounts, objective: float, min_events: int
    ) -> bool:
        """Both windows burn at >= `factor`; the long one has `min_events` events, the short
        one at least one (an empty short window confirms nothing)."""
        if long.total < min_events or short.total == 0:
            return False
        return (
            long.burn_rate(objective) >= self.factor and short.burn_rate(objective) >= self.factor
        )


class BurnAlert(_Model):
    """An SLO burning its budget too fast in both windows of `window`."""

    slo: str
    kind: SloKind
    window: BurnWindow
    long_rate: float
    short_rate: float
    action: BurnAction


class ErrorBudget(_Model):
    """How much of an SLO's error budget is left over its window.

    `remaining` is 1 with no bad events, 0 when bad events reach the budget, and negative
    once it is overspent (kept negative so a report shows by how much)."""

    objective: float
    good: int
    total: int
    remaining: float

    @classmethod
    def of(cls, objective: float, counts: SliCounts) -> ErrorBudget:
        """What is left of the budget of `objective` given the counts over its window."""
        allowed = counts.total * budget_of(objective)
        remaining = 1.0 if counts.total == 0 else 1 - counts.bad / allowed
        return cls(objective=objective, good=counts.good, total=counts.total, remaining=remaining)


class WindowStats(_Model):
    """What happened to one agent in one time window, for the anomaly signals.

    `runs` are all ended runs; `completed` and `failed` split those not ended by a human
    (`failed` counts failed, timed_out and budget_exceeded). `tool_errors` exclude timeouts."""

    runs: int = Field(default=0, ge=0)
    completed: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    safety_events: int = Field(default=0, ge=0)
    tool_calls: int = Field(default=0, ge=0)
    tool_errors: int = Field(default=0, ge=0)
    tool_timeouts: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    tokens: int = Field(default=0, ge=0)
    latency_p95_seconds: float | None = None


class BacklogStats(_Model):
    """A task queue's backlog, as Temporal reports it (approximate count and oldest age)."""

    task_queue: str
    backlog: int = Field(ge=0)
    oldest_age_seconds: float = Field(default=0.0, ge=0)


class SignalName(StrEnum):
    SUCCESS_DROP = "success_drop"
    SAFETY_SPIKE = "safety_spike"
    TOOL_ERROR_SPIKE = "tool_error_spike"
    TOOL_TIMEOUT_SPIKE = "tool_timeout_spike"
    COST_PER_TASK_RISE = "cost_per_task_rise"
    TOKENS_PER_TASK_RISE = "tokens_per_task_rise"
    LATENCY_REGRESSION = "latency_regression"
    BACKLOG_SIZE = "backlog_size"
    BACKLOG_AGE = "backlog_age"


class SignalThresholds(_Model):
    """When a signal fires. Rises are "current >= factor x baseline AND current - baseline >=
    the floor", so a tiny baseline cannot turn one event into an alert; nothing is judged on
    fewer than the minimum samples in either window."""

    min_runs: int = Field(default=20, ge=1)
    min_tool_calls: int = Field(default=20, ge=1)
    success_drop: float = Field(default=0.10, gt=0, lt=1)  # success ratio, absolute points
    safety_factor: float = Field(default=2.0, gt=1)
    safety_floor: float = Field(default=0.02, ge=0)  # safety events per run
    tool_error_factor: float = Field(default=2.0, gt=1)
    tool_error_floor: float = Field(default=0.05, ge=0)  # errors per call
    tool_timeout_factor: float = Field(default=2.0, gt=1)
    tool_timeout_floor: float = Field(default=0.02, ge=0)  # timeouts per call
    cost_factor: float = Field(default=1.5, gt=1)  # USD per run
    tokens_factor: float = Field(default=1.5, gt=1)  # tokens per run
    latency_factor: float = Field(default=1.5, gt=1)
    latency_floor_seconds: float = Field(default=5.0, ge=0)  # p95
    max_backlog: int = Field(default=100, ge=1)  # tasks waiting on the queue
    max_backlog_age_seconds: float = Field(default=300.0, gt=0)  # the oldest one


class AlertPolicy(_Model):
    """`[alerts]` of an agent: the automatic incident triggers, judged over the last
    `window_minutes` (also the current window of the signals, whose baseline is the
    `baseline_hours` before it). A trigger set to 0 is off. Nothing is judged on fewer than
    `min_runs` runs (`min_tool_calls` calls for the tool failure rate)."""

    window_minutes: int = Field(default=30, ge=5, le=1440)
    baseline_hours: int = Field(default=24, ge=1, le=168)
    cost_usd_per_hour: float = Field(default=10.0, ge=0)
    safety_events_per_run: float = Field(default=0.25, ge=0)
    tool_failure_rate: float = Field(default=0.25, ge=0, le=1)  # errors + timeouts per call
    min_runs: int = Field(default=10, ge=1)
    min_tool_calls: int = Field(default=20, ge=1)
    signals: SignalThresholds = Field(default_factory=SignalThresholds)

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    @property
    def baseline(self) -> timedelta:
        return timedelta(hours=self.baseline_hours)


class SignalAlert(_Model):
    """A signal that crossed its threshold: the current value against the baseline's."""

    signal: SignalName
    current: float
    baseline: float | None
    threshold: float
    detail: str


def budget_of(objective: float) -> float:
    """1 - objective, rounded so 0.95 leaves exactly 0.05: without it a burn of exactly 1x
    computes as 0.9999999999999991x and a threshold of 1x never fires."""
    return round(1 - objective, 12)


def format_window(window: timedelta) -> str:
    """A window the way Prometheus writes a duration: 5m, 1h, 3d."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# The multiwindow, multi-burn-rate policy (Google SRE workbook): both windows of a pair
# must burn at the factor or more.
DEFAULT_BURN_POLICY: tuple[BurnWindow, ...] = (
    BurnWindow(long=timedelta(hours=1), short=timedelta(minutes=5), factor=14.4, action="page"),
    BurnWindow(long=timedelta(hours=6), short=timedelta(minutes=30), factor=6.0, action="page"),
    BurnWindow(long=timedelta(days=3), short=timedelta(hours=6), factor=1.0, action="ticket"),
)

# Fewer events than this in the long window never alert: one bad run out of one is a 100%
# error ratio, not an outage.
DEFAULT_MIN_EVENTS = 10
