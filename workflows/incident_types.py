"""Typed input, state, updates and activity payloads of the `Incident` workflow.

Everything here travels in Temporal payloads, so field names are the incident workflow's
public contract: the SLO monitor, the CLI and service code depend on them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.contract import INCIDENT_WORKFLOW as INCIDENT_WORKFLOW  # its home: the contract

INCIDENT_ID_PREFIX = "incident-"

# Ids and trace ids kept per incident: enough to find the runs, small enough for a payload.
MAX_LINKED_IDS = 200


def incident_id(dedup_key: str) -> str:
    """One open incident per dedup key: the workflow id is derived from it."""
    return f"{INCIDENT_ID_PREFIX}{dedup_key}"


class Severity(StrEnum):
    """SEV1 is the worst. Compare with `rank` (1..4) or `is_at_least`."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @property
    def rank(self) -> int:
        return int(self.value[3:])

    def is_at_least(self, other: Severity) -> bool:
        """True when this severity is `other` or worse (SEV1 is at least SEV2)."""
        return self.rank <= other.rank


def worst(a: Severity, b: Severity) -> Severity:
    return a if a.rank <= b.rank else b


class IncidentState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"


TriggerKind = Literal[
    "slo_burn", "signal", "cost_rate", "safety_rate", "tool_failure_rate", "manual"
]
UserImpact = Literal["none", "some", "many"]
USER_IMPACT_ORDER: dict[str, int] = {"none": 0, "some": 1, "many": 2}
IncidentPhase = Literal["open", "resolve"]
PageAction = Literal["trigger", "acknowledge", "resolve"]
RunbookAction = Literal[
    "engage_kill_switch",
    "rollback_flag",
    "rollback_deployment",
    "switch_fallback_model",
    "pause_agent",
    "drain_task_queue",
]
StepMode = Literal["automatic", "on_request", "needs_approval"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentTrigger(_Model):
    """What raised the alarm, with the numbers that crossed a threshold."""

    kind: TriggerKind
    agent: str
    detail: str = ""
    numbers: dict[str, float] = Field(default_factory=dict)  # e.g. burn_rate, threshold
    first_bad_at: datetime | None = None  # when the bad behaviour started, if known
    detected_at: datetime


class OpenIncidentRequest(_Model):
    """The incident workflow's input."""

    dedup_key: str = Field(min_length=1)
    title: str = Field(min_length=1)
    agent: str
    trigger: IncidentTrigger
    user_impact: UserImpact = "none"
    is_safety: bool = False
    cost_usd_per_hour: float = Field(default=0.0, ge=0)
    affected_run_ids: list[str] = Field(default_factory=list, max_length=MAX_LINKED_IDS)
    trace_ids: list[str] = Field(default_factory=list, max_length=MAX_LINKED_IDS)
    opened_by: str = Field(default="opsready", min_length=1)  # a person, for manual incidents
    severity: Severity | None = None  # declared by a person: used instead of the matrix's


class JoinRequest(_Model):
    """A repeated alert for the same dedup key joins the open incident (update `join`)."""

    trigger: IncidentTrigger
    user_impact: UserImpact = "none"
    is_safety: bool = False
    cost_usd_per_hour: float = Field(default=0.0, ge=0)
    affected_run_ids: list[str] = Field(default_factory=list, max_length=MAX_LINKED_IDS)
    trace_ids: list[str] = Field(default_factory=list, max_length=MAX_LINKED_IDS)


class TimelineEntry(_Model):
    at: datetime
    kind: str  # opened, joined, paged, acknowledged, note, step, mitigated, resolved, ...
    by: str  # a person, or "opsready" for what the workflow did itself
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


class PageRecord(_Model):
    """One page sent to one target; `tier` counts from 1 (the primary on-call).

    `at` is when the incident paged (the ack deadline counts from it), whether or not the
    pager took it: `is_delivered` stays None while the notify activity retries, then says
    how it ended (`error` when it did not)."""

    tier: int = Field(ge=1)
    target: str
    at: datetime
    acked_at: datetime | None = None
    is_delivered: bool | None = None
    error: str | None = None


class PlannedStep(_Model):
    """One step of the incident's plan, shown in the state query; run it by its `key`."""

    key: str  # "runbook/step"
    runbook: str
    runbook_version: str
    action: RunbookAction
    target: str  # with the agent placeholder filled in
    is_risky: bool
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    mode: StepMode
    reason: str


class StepRun(_Model):
    """A runbook step that ran (or was refused by its target), who asked and who approved."""

    step: str  # the planned step's key, "runbook/step"
    action: str
    target: str
    by: str
    approved_by: str | None = None
    is_automatic: bool = False
    at: datetime
    is_ok: bool = True
    detail: str = ""


class EvidenceRef(_Model):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class IncidentStatus(_Model):
    """The `state` query."""

    id: str
    dedup_key: str
    title: str
    agent: str
    severity: Severity
    state: IncidentState
    trigger: IncidentTrigger
    user_impact: UserImpact = "none"
    is_safety: bool = False
    cost_usd_per_hour: float = 0.0
    affected_run_ids: list[str] = Field(default_factory=list)
    trace_ids: list[str] = Field(default_factory=list)
    joins: int = 0  # repeated alerts that joined this incident
    opened_at: datetime
    detected_at: datetime
    first_bad_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_summary: str | None = None
    paged: list[PageRecord] = Field(default_factory=list)
    steps_run: list[StepRun] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    evidence_open: EvidenceRef | None = None
    evidence_resolve: EvidenceRef | None = None  # holds the open bundle too: the one to keep
    postmortem_path: str | None = None
    mttd_s: float | None = None
    mttr_s: float | None = None
    plan: list[PlannedStep] = Field(default_factory=list)  # what `run_step` may run


# --- updates -----------------------------------------------------------------------------


class AckRequest(_Model):
    by: str = Field(min_length=1)


class NoteRequest(_Model):
    by: str = Field(min_length=1)
    text: str = Field(min_length=1, max_length=4000)


class RunStepRequest(_Model):
    """Run one planned runbook step; risky steps need a second person in `approved_by`."""

    step: str = Field(min_length=1)  # the planned step's key, "runbook/step"
    by: str = Field(min_length=1)
    approved_by: str | None = None


class ResolveRequest(_Model):
    by: str = Field(min_length=1)
    summary: str = Field(min_length=1, max_length=4000)


class OpenIncidentResult(_Model):
    """What the `opsready.incident.open` activity (and `opsready incident open`) answers:
    the incident that now covers the alert, and whether this alert opened it."""

    incident_id: str
    is_new: bool  # False: the alert joined an incident already open for its dedup key
    severity: Severity
    state: IncidentState
    joins: int = 0


# --- notify activity payload ---------------------------------------------------------------


class Page(_Model):
    """What one page says; the notifier renders it as PagerDuty, Slack or generic JSON."""

    incident_id: str
    dedup_key: str
    action: PageAction = "trigger"
    title: str
    agent: str
    severity: Severity
    tier: int = Field(default=1, ge=1)
    targets: list[str] = Field(default_factory=list)
    link: str | None = None  # the incident in the Temporal UI
    details: dict[str, Any] = Field(default_factory=dict)
