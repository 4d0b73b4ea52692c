"""Shadow comparisons: a production run and its shadow twin, side by side.

The comparison is computed here (not in workflow code) and recorded in the shadow run's
result and state, where `opsready shadow report` reads it back through visibility.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import structlog
from temporalio import activity

from workflows.contract import Activity
from workflows.payloads import CompareShadowInput
from workflows.types import ShadowComparison

log = structlog.get_logger("opsready.shadow")

_WORD = re.compile(r"[a-z0-9$.,'-]+")


def output_similarity(a: str | None, b: str | None) -> float:
    """Jaccard similarity of the answers' word sets: 1.0 same words, 0.0 none shared."""
    words_a = set(_WORD.findall((a or "").lower()))
    words_b = set(_WORD.findall((b or "").lower()))
    if not words_a and not words_b:
        return 1.0
    return round(len(words_a & words_b) / len(words_a | words_b), 3)


def compare(request: CompareShadowInput) -> ShadowComparison:
    production, shadow = request.production, request.shadow
    return ShadowComparison(
        agent=request.agent,
        candidate=request.candidate,
        production=production,
        shadow=shadow,
        same_tool_plan=production.tool_plan == shadow.tool_plan,
        output_similarity=output_similarity(production.output, shadow.output),
        same_status=production.status == shadow.status,
        compared_at=datetime.now(UTC),
    )


class ShadowActivities:
    @activity.defn(name=Activity.COMPARE_SHADOW)
    async def compare_shadow(self, request: CompareShadowInput) -> ShadowComparison:
        comparison = compare(request)
        log.info(
            "shadow compared",
            candidate=request.candidate.label(),
            production_run=request.production.run_id,
            shadow_run=request.shadow.run_id,
            same_tool_plan=comparison.same_tool_plan,
            output_similarity=comparison.output_similarity,
            same_status=comparison.same_status,
            production_cost_usd=request.production.cost_usd,
            shadow_cost_usd=request.shadow.cost_usd,
        )
        return comparison
