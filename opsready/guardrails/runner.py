"""Run an agent's guardrails on a run's input or on a model's answer.

Checks run in their configured order; each sees the text as masked by the checks before
it, so masks compose. Every hit is returned (for safety events and metrics); the outcome
says whether to block, to ask a human, or to go on with the (possibly masked) text.
"""

from __future__ import annotations

from collections.abc import Sequence

from opsready.guardrails.base import (
    GuardrailContext,
    GuardrailHit,
    GuardrailOutcome,
    Stage,
    ToolOutput,
    strongest,
)
from opsready.guardrails.config import GuardrailConfig


def run_input_checks(
    config: GuardrailConfig, text: str, ctx: GuardrailContext | None = None
) -> GuardrailOutcome:
    """Check a run's input before the model sees it."""
    return _run("input", config, text, ctx or GuardrailContext())


def run_output_checks(
    config: GuardrailConfig,
    text: str,
    tool_outputs: Sequence[ToolOutput],
    ctx: GuardrailContext | None = None,
) -> GuardrailOutcome:
    """Check a model's answer (and `ctx.tool_calls`, the calls it proposes) against the
    tool results the run has seen so far."""
    base = ctx or GuardrailContext()
    ctx = base.model_copy(update={"tool_outputs": [*base.tool_outputs, *tool_outputs]})
    return _run("output", config, text, ctx)


def _run(
    stage: Stage, config: GuardrailConfig, text: str, ctx: GuardrailContext
) -> GuardrailOutcome:
    hits: list[GuardrailHit] = []
    for guardrail in config.build(stage):
        found = guardrail.check(text, ctx)
        for hit in found:
            if hit.action == "mask" and hit.masked_text is not None:
                text = hit.masked_text
        hits.extend(found)
    action = strongest(hits)
    return GuardrailOutcome(
        stage=stage,
        text=text,
        hits=hits,
        is_blocked=action == "block",
        needs_review=action == "review",
    )
