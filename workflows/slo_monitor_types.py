"""Input, alerts and report of the `SloMonitor` workflow (started by a Temporal Schedule).

Field names are its public contract: the Schedule's stored action, `opsready slo monitor
status` and service code read them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from workflows.incident_types import TriggerKind, UserImpact
from workflows.sli_types import BadRuns
from workflows.slo_types import DEFAULT_MIN_EVENTS, BurnAction, SignalThresholds

DEFAULT_EVERY_SECONDS = 60  # how often the Schedule starts the monitor
SLO_MONITOR_ID = "slo-monitor"  # the Schedule adds the start time to each run's id


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SloMonitorInput(_Model):
    """One pass over the SLOs of `agents` (None: every agent the worker knows)."""

    agents: list[str] | None = None
    task_queues: list[str] = Field(default_factory=list)  # whose backlog to watch
    backlog: SignalThresholds = Field(default_factory=SignalThresholds)  # its max_backlog*
    min_events: int = Field(default=DEFAULT_MIN_EVENTS, ge=1)  # in a burn pair's long window
    list_cap: int = Field(default=2000, ge=1)  # runs listed per alert window
    open_incidents: bool = True  # False: judge and report, but ask for no incident
    # The SLOs, signals and triggers this pass judges, by name (None: all of them): a pass
    # that rehearses one alert opens no incident for the others.
    only: list[str] | None = None


class MonitorAlert(_Model):
    """Something the monitor found wrong, with what an incident needs to know about it.
    `bad` selects the runs it blames, ended in [since, as_of] (None: no run to blame)."""

    dedup_key: str
    agent: str  # "*" for a task queue's backlog: it hits every agent on the queue
    kind: TriggerKind
    name: str  # the SLO, signal or trigger
    action: BurnAction
    title: str
    detail: str
    numbers: dict[str, float] = Field(default_factory=dict)
    user_impact: UserImpact = "none"
    is_safety: bool = False
    cost_usd_per_hour: float = Field(default=0.0, ge=0)
    bad: BadRuns | None = None
    since: datetime


class SloMonitorReport(_Model):
    """What one pass found and did; `requested` are the dedup keys an incident was asked
    for, `already_open` the alerts an open incident covers, `failed` "key: why"."""

    as_of: datetime
    agents: list[str] = Field(default_factory=list)
    alerts: list[MonitorAlert] = Field(default_factory=list)
    requested: list[str] = Field(default_factory=list)
    already_open: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)  # agents that could not be read
