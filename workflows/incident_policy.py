"""Incident policy as data and pure functions: the severity matrix, escalation and timings.

Deterministic (no I/O, no clock), so the `Incident` workflow calls it directly; the TOML
that fills these models is read by `opsready.incidents.config`. Runbooks: `incident_runbooks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from workflows.incident_config_types import OnCallRota, SeverityLevel, SeverityMatrix
from workflows.incident_types import (
    MAX_LINKED_IDS,
    USER_IMPACT_ORDER,
    JoinRequest,
    OpenIncidentRequest,
    PageRecord,
    Severity,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
