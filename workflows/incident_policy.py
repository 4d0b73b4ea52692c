"""Incident policy as data and pure functions: the severity matrix, escalation and timings.

Deterministic (no I/O, no clock), so the `Incident` workflow calls it directly; the TOML
that fills these models is read by `opsready.incidents.config`. Runbooks: `incident_runbooks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.incident_types import (
    MAX_LINKED_IDS,
    USER_IMPACT_ORDER,
    JoinRequest,
    OpenIncidentRequest,
    PageRecord,
    Severity,
    TriggerKind,
    UserImpact,
)


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


def classify(matrix: SeverityMatrix, request: OpenIncidentRequest) -> Severity:
    """The severity of the first rule that matches, else the matrix's default."""
    for rule in matrix.rules:
        if rule.matches(request):
            return rule.severity
    return matrix.default_severity


def merge_join(request: OpenIncidentRequest, join: JoinRequest) -> OpenIncidentRequest:
    """The incident's impact after a repeated alert: the worse of each, ids united.

    Re-`classify` the result and keep the worse severity: an incident never gets milder
    by being seen again.
    """
    impact = max(request.user_impact, join.user_impact, key=USER_IMPACT_ORDER.__getitem__)
    return request.model_copy(
        update={
            "user_impact": impact,
            "is_safety": request.is_safety or join.is_safety,
            "cost_usd_per_hour": max(request.cost_usd_per_hour, join.cost_usd_per_hour),
            "affected_run_ids": _united(request.affected_run_ids, join.affected_run_ids),
            "trace_ids": _united(request.trace_ids, join.trace_ids),
        }
    )


def _united(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))[:MAX_LINKED_IDS]


# --- escalation ----------------------------------------------------------------------------


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


class PageDecision(_Model):
    """Page these targets now, as this tier (counting from 1)."""

    tier: int
    targets: list[str]


def _tiers_allowed(rota: OnCallRota, level: SeverityLevel) -> int:
    return min(level.escalation_tiers, len(rota.tiers))


def _last_tier(paged: Sequence[PageRecord]) -> tuple[int, datetime]:
    tier = max(p.tier for p in paged)
    return tier, max(p.at for p in paged if p.tier == tier)


def next_page(
    rota: OnCallRota,
    level: SeverityLevel,
    paged: Sequence[PageRecord],
    now: datetime,
    *,
    is_acknowledged: bool = False,
) -> PageDecision | None:
    """What to page now: tier 1 at once, the next tier when the last one let the ack
    deadline pass, nothing once acknowledged or when the severity allows no further tier."""
    if is_acknowledged:
        return None
    if not paged:
        return PageDecision(tier=1, targets=list(rota.tiers[0]))
    tier, at = _last_tier(paged)
    if tier >= _tiers_allowed(rota, level) or now < at + level.ack_deadline:
        return None
    return PageDecision(tier=tier + 1, targets=list(rota.tiers[tier]))


def next_escalation_at(
    rota: OnCallRota,
    level: SeverityLevel,
    paged: Sequence[PageRecord],
    *,
    is_acknowledged: bool = False,
) -> datetime | None:
    """When `next_page` will next have something to page (the workflow's timer), or None."""
    if is_acknowledged or not paged:
        return None
    tier, at = _last_tier(paged)
    if tier >= _tiers_allowed(rota, level):
        return None
    return at + level.ack_deadline


# --- timings -------------------------------------------------------------------------------


def mttd(first_bad_at: datetime | None, detected_at: datetime) -> float | None:
    """Time to detect in seconds; None when the start of the trouble is unknown."""
    if first_bad_at is None:
        return None
    return max(0.0, (detected_at - first_bad_at).total_seconds())


def mttr(detected_at: datetime, resolved_at: datetime | None) -> float | None:
    """Time from detection to resolution in seconds; None while unresolved."""
    if resolved_at is None:
        return None
    return max(0.0, (resolved_at - detected_at).total_seconds())
