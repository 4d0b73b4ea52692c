"""The incident configuration as data: the severity matrix, the on-call rota and runbooks.

Filled from TOML by `opsready.incidents.config`, carried in the `Incident` workflow's input,
and read by the pure decisions in `incident_policy` and `incident_runbooks`.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.incident_types import (
    USER_IMPACT_ORDER,
    OpenIncidentRequest,
    Severity,
    TriggerKind,
    UserImpact,
)
from workflows.incident_types import RunbookAction as RunbookAction  # re-exported
from workflows.incident_types import StepMode as StepMode  # re-exported


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- severity ------------------------------------------------------------------------------


class SeverityRule(_Model):
    """Matches when every condition it states holds; the first matching rule wins."""

    name: str = ""
    severity: Severity
    is_safety: bool | None = None
    min_user_impact: UserImpact | None = None
    min_cost_usd_per_hour: float | None = Field(default=None, ge=0)
    trigger_kinds: list[TriggerKind] = Field(default_factory=list)  # empty: any kind

    @model_validator(mode="after")
    def _has_a_condition(self) -> SeverityRule:
        if (
            self.is_safety is None
            and self.min_user_impact is None
            and self.min_cost_usd_per_hour is None
            and not self.trigger_kinds
        ):
            raise ValueError(
                "a rule needs a condition (is_safety, min_user_impact, min_cost_usd_per_hour "
                "or trigger_kinds); set default_severity for the catch-all"
            )
        return self

    def matches(self, request: OpenIncidentRequest) -> bool:
        if self.is_safety is not None and request.is_safety != self.is_safety:
            return False
        if self.min_user_impact is not None and (
            USER_IMPACT_ORDER[request.user_impact] < USER_IMPACT_ORDER[self.min_user_impact]
        ):
            return False
        if (
            self.min_cost_usd_per_hour is not None
            and request.cost_usd_per_hour < self.min_cost_usd_per_hour
        ):
            return False
        return not self.trigger_kinds or request.trigger.kind in self.trigger_kinds


class SeverityLevel(_Model):
    """How a severity is handled: how fast someone must answer and what may run unasked."""

    ack_deadline_seconds: float = Field(gt=0)
    escalation_tiers: int = Field(ge=1)  # how many rota tiers may be paged, in order
    auto_actions_allowed: bool = False  # may risky runbook steps run without an approval?

    @property
    def ack_deadline(self) -> timedelta:
        return timedelta(seconds=self.ack_deadline_seconds)


def _default_rules() -> list[SeverityRule]:
    return [
        SeverityRule(
            name="safety incident that reached users",
            severity=Severity.SEV1,
            is_safety=True,
            min_user_impact="some",
        ),
        SeverityRule(name="many users affected", severity=Severity.SEV2, min_user_impact="many"),
        SeverityRule(
            name="safety incident, no users affected yet", severity=Severity.SEV2, is_safety=True
        ),
        SeverityRule(name="runaway cost", severity=Severity.SEV2, min_cost_usd_per_hour=50.0),
        SeverityRule(name="elevated cost", severity=Severity.SEV3, min_cost_usd_per_hour=5.0),
        SeverityRule(name="some users affected", severity=Severity.SEV3, min_user_impact="some"),
    ]


def _default_levels() -> dict[Severity, SeverityLevel]:
    return {
        Severity.SEV1: SeverityLevel(
            ack_deadline_seconds=300, escalation_tiers=3, auto_actions_allowed=True
        ),
        Severity.SEV2: SeverityLevel(ack_deadline_seconds=900, escalation_tiers=3),
        Severity.SEV3: SeverityLevel(ack_deadline_seconds=3600, escalation_tiers=2),
        Severity.SEV4: SeverityLevel(ack_deadline_seconds=86400, escalation_tiers=1),
    }


class SeverityMatrix(_Model):
    """Rules from impact to severity, and the handling of each severity."""

    rules: list[SeverityRule] = Field(default_factory=_default_rules)
    default_severity: Severity = Severity.SEV4
    levels: dict[Severity, SeverityLevel] = Field(default_factory=_default_levels)

    @field_validator("levels", mode="before")
    @classmethod
    def _over_defaults(cls, given: object) -> object:
        """A `[levels.SEVn]` table overrides the default handling field by field."""
        if not isinstance(given, dict):
            return given
        merged: dict[object, object] = {s: lvl.model_dump() for s, lvl in _default_levels().items()}
        for key, value in given.items():
            default = merged.get(key)
            if isinstance(value, dict) and isinstance(default, dict):
                merged[key] = {**default, **value}
            else:
                merged[key] = value
        return merged

    def level(self, severity: Severity) -> SeverityLevel:
        return self.levels[severity]


class OnCallRota(_Model):
    """Who answers for an agent: its owning team and the tiers paged in turn."""

    owner: str = Field(default="platform", min_length=1)
    tiers: list[list[str]] = Field(
        default_factory=lambda: [["primary-oncall"], ["secondary-oncall"], ["engineering-lead"]],
        min_length=1,
    )

    @model_validator(mode="after")
    def _tiers_not_empty(self) -> OnCallRota:
        for index, tier in enumerate(self.tiers):
            if not tier or any(not target.strip() for target in tier):
                raise ValueError(f"tiers[{index}] needs at least one non-empty target")
        return self


# --- runbooks ------------------------------------------------------------------------------

# What each action may act on: a target is written "kind:name", e.g. "tool:refund_order".
TARGET_KINDS: dict[str, tuple[str, ...]] = {
    "engage_kill_switch": ("agent", "tool"),
    "rollback_flag": ("flag",),
    "rollback_deployment": ("deployment",),
    "switch_fallback_model": ("agent",),
    "pause_agent": ("agent",),
    "drain_task_queue": ("queue",),
}
AGENT_PLACEHOLDER = "{agent}"  # in a target: the incident's agent
FAIL_CLOSED_RUNBOOK = "fail-closed"


class RunbookStep(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    action: RunbookAction
    target: str
    is_risky: bool = False
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _target_fits_action(self) -> RunbookStep:
        kinds = TARGET_KINDS[self.action]
        kind, _, name = self.target.partition(":")
        if kind not in kinds or not name:
            shapes = " or ".join(f"{k}:NAME" for k in kinds)
            raise ValueError(f"{self.action} targets {shapes}, got {self.target!r}")
        return self


class AutomaticCondition(_Model):
    """The runbook runs by itself for this trigger kind (any when omitted) at this
    severity or worse."""

    trigger: TriggerKind | None = None
    severity: Severity


class Runbook(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: str = Field(min_length=1)
    agent: str = "*"  # the agent it is for; "*" for every agent
    description: str = ""
    steps: list[RunbookStep] = Field(min_length=1)
    automatic_on: list[AutomaticCondition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _step_ids_unique(self) -> Runbook:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice: give each step its own id")
            seen.add(step.id)
        return self

    def is_for(self, agent: str) -> bool:
        return self.agent in ("*", agent)

    def is_automatic(self, trigger: TriggerKind, severity: Severity) -> bool:
        return any(
            (c.trigger is None or c.trigger == trigger) and severity.is_at_least(c.severity)
            for c in self.automatic_on
        )
