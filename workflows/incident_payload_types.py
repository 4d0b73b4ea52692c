"""The `Incident` workflow's input, what it carries over continue-as-new, and the payloads
of its activities. Field names are in recorded histories: add fields with defaults, rename
nothing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from workflows.incident_config_types import OnCallRota, Runbook, SeverityMatrix
from workflows.incident_types import (
    EvidenceRef,
    IncidentPhase,
    IncidentStatus,
    IncidentTrigger,
    OpenIncidentRequest,
    PlannedStep,
    Severity,
    TriggerKind,
)

# An incident continues as new after this many history events (Temporal warns at 10 240).
CONTINUE_AS_NEW_AFTER_EVENTS = 5000
# Alerts (the opening one and every join) kept with their numbers for the evidence.
MAX_ALERTS_KEPT = 50


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentPolicy(_Model):
    """What the incident decides with, for its agent: loaded once (an activity) and carried
    over continue-as-new, so a mid-incident edit of the TOML cannot change the plan."""

    matrix: SeverityMatrix = Field(default_factory=SeverityMatrix)
    rota: OnCallRota = Field(default_factory=OnCallRota)
    runbooks: list[Runbook] = Field(default_factory=list)
    problem: str | None = None  # the config could not be read: built-in defaults, and why


class IncidentCheckpoint(_Model):
    """Where a continued incident stands: its state, its impact after every join, and the
    alerts it has seen (their keys make a repeated `join` a no-op)."""

    status: IncidentStatus
    impact: OpenIncidentRequest
    alerts: list[IncidentTrigger] = Field(default_factory=list)
    alert_keys: list[str] = Field(default_factory=list)


class IncidentInput(_Model):
    """The `Incident` workflow's input: the alert that opened it, and optionally its policy
    (None: the config activity loads it from the worker's agents/incidents/)."""

    request: OpenIncidentRequest
    policy: IncidentPolicy | None = None
    checkpoint: IncidentCheckpoint | None = None
    continue_as_new_after_events: int = Field(default=CONTINUE_AS_NEW_AFTER_EVENTS, ge=20)


# --- activities ----------------------------------------------------------------------------


class IncidentConfigInput(_Model):
    agent: str


class PageReceipt(_Model):
    """How a page went out: `pagerduty`, `slack` or `json` (a webhook), or `log`."""

    channel: str


class RunStepInput(_Model):
    incident_id: str
    step: PlannedStep
    by: str


class StepOutcome(_Model):
    """What the step changed, in one line for the timeline."""

    detail: str


class EvidenceInput(_Model):
    incident_id: str
    phase: IncidentPhase
    status: IncidentStatus
    alerts: list[IncidentTrigger] = Field(default_factory=list)  # with their numbers
    open_bundle: EvidenceRef | None = None  # the resolve bundle carries the open one inside


class EvidenceResult(_Model):
    ref: EvidenceRef
    runs: int
    histories: int
    problems: list[str] = Field(default_factory=list)  # runs not found, queries that failed


class PostmortemInput(_Model):
    status: IncidentStatus


class PostmortemResult(_Model):
    path: str


class IncidentTimings(_Model):
    """MTTD and MTTR of a resolved incident, for the metrics."""

    incident_id: str
    agent: str
    severity: Severity
    trigger: TriggerKind
    mttd_s: float | None
    mttr_s: float | None
