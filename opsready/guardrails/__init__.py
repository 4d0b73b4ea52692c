"""Guardrails: I/O-free checks of a run's input and of a model's answer.

Activities run them: `run_input_checks` before the model sees the input,
`run_output_checks` before an answer is shown or its tool calls are made. An agent picks
its checks in its TOML `[guardrails]` table (`load_guardrails`, `parse_guardrails`).
"""

from opsready.guardrails.base import (
    Action,
    Guardrail,
    GuardrailContext,
    GuardrailHit,
    GuardrailKind,
    GuardrailOutcome,
    Stage,
    ToolOutput,
)
from opsready.guardrails.config import (
    REGISTRY,
    GuardrailConfig,
    GuardrailSpec,
    default_guardrails,
    load_guardrails,
    parse_guardrails,
    register,
)
from opsready.guardrails.injection import DEFAULT_THRESHOLD, InjectionScore, score_injection
from opsready.guardrails.runner import run_input_checks, run_output_checks

__all__ = [
    "DEFAULT_THRESHOLD",
    "REGISTRY",
    "Action",
    "Guardrail",
    "GuardrailConfig",
    "GuardrailContext",
    "GuardrailHit",
    "GuardrailKind",
    "GuardrailOutcome",
    "GuardrailSpec",
    "InjectionScore",
    "Stage",
    "ToolOutput",
    "default_guardrails",
    "load_guardrails",
    "parse_guardrails",
    "register",
    "run_input_checks",
    "run_output_checks",
    "score_injection",
]
