"""What a run's flags choose: variant, prompt version, model, fallbacks, tools, budgets,
quotas, shadow.

Pure functions over recorded evaluations, so the rules are unit-tested without a flag
client. A flag value that is missing or invalid never breaks a run: the agent's default
applies and the problem is reported, so the run can mark itself as degraded (fail safe).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from opsready.agents import AgentDefinition, QuotaDefinition
from opsready.errors import error_parts, one_line
from opsready.flags.values import ShadowFlag
from workflows import contract
from workflows.payloads import Budgets, ModelPrice
from workflows.quota_types import QuotaLimits
from workflows.types import Candidate, FlagEvaluation

# The flags every run evaluates, with the value that means "as the agent defines it".
RUN_FLAGS: dict[str, Any] = {
    "agent-variant": "control",
    "prompt-version": "",
    "model": "",
    "fallback-model": "",
    "enabled-tools": None,
    "budgets": {},
    "quotas": {},
    "shadow": {},
}
CONTROL = "control"
SHADOW_VARIANT = contract.SHADOW_VARIANT


@dataclass
class Choices:
    variant: str
    prompt_version: str
    models: list[str]  # provider/model: the primary first, then the fallbacks in order
    tools: list[str]
    budgets: Budgets
    quotas: QuotaDefinition = field(default_factory=QuotaDefinition)
    shadow: Candidate | None = None
    problems: list[str] = field(default_factory=list)


def choose(
    definition: AgentDefinition,
    evaluations: dict[str, FlagEvaluation],
    prices: dict[str, ModelPrice],
    *,
    model_override: str | None = None,
    shadow_of: Candidate | None = None,
    run_id: str | None = None,
) -> Choices:
    problems = [
        f"flag {e.key}: {e.error or e.reason} (default used)"
        for e in evaluations.values()
        if e.is_default or e.error
    ]

    def value(key: str) -> Any:
        evaluation = evaluations.get(key)
        return RUN_FLAGS[key] if evaluation is None or evaluation.is_default else evaluation.value

    choices = Choices(
        variant=CONTROL,
        prompt_version=definition.prompt_version,
        models=[model_override or definition.model],
        tools=list(definition.tools),
        budgets=definition.budgets,
        quotas=definition.quotas or QuotaDefinition(),
        problems=problems,
    )
    _apply_variant(choices, definition, value("agent-variant"))
    _apply_prompt(choices, definition, value("prompt-version"), "prompt-version")
    _apply_model(choices, prices, value("model"), "model")
    _apply_fallbacks(choices, definition, prices, value("fallback-model"))
    _apply_tools(choices, definition, value("enabled-tools"))
    _apply_budgets(choices, value("budgets"))
    _apply_quotas(choices, value("quotas"))
    if shadow_of is not None:
        choices.variant = SHADOW_VARIANT
        _apply_prompt(choices, definition, shadow_of.prompt_version or "", "shadow")
        _apply_model(choices, prices, shadow_of.model or "", "shadow")
    else:
        choices.shadow = _shadow_candidate(choices, value("shadow"), run_id)
    return choices


def _apply_variant(choices: Choices, definition: AgentDefinition, name: Any) -> None:
    if name == CONTROL or name in (None, ""):
        return
    variant = definition.variants.get(name) if isinstance(name, str) else None
    if variant is None:
        known = ", ".join([CONTROL, *definition.variants])
        choices.problems.append(f"flag agent-variant: no variant {name!r} (known: {known})")
        return
    choices.variant = name
    _apply_prompt(choices, definition, variant.prompt_version or "", f"variant {name}")
    if variant.model:
        choices.models[0] = variant.model


def _apply_prompt(choices: Choices, definition: AgentDefinition, version: Any, source: str) -> None:
    if version in ("", None):
        return
    if not isinstance(version, str) or version not in definition.prompts:
        known = ", ".join(sorted(definition.prompts))
        choices.problems.append(f"{source}: no prompt version {version!r} (known: {known})")
        return
    choices.prompt_version = version


def _apply_model(choices: Choices, prices: dict[str, ModelPrice], model: Any, source: str) -> None:
    if model in ("", None):
        return
    if not isinstance(model, str) or not _is_priced_model(model, prices):
        choices.problems.append(f"{source}: model {model!r} is not provider/model with a price")
        return
    choices.models[0] = model


def _apply_fallbacks(
    choices: Choices, definition: AgentDefinition, prices: dict[str, ModelPrice], flag: Any
) -> None:
    """The chain after the primary: the flag's model or list of models when set, else the
    agent's `fallback_models`; unpriced ones are left out and reported."""
    chain: Any = flag if flag else definition.fallback_models
    if isinstance(chain, str):
        chain = [chain]
    if not isinstance(chain, list) or not all(isinstance(m, str) for m in chain):
        choices.problems.append("flag fallback-model: not a model or a list of models (ignored)")
        chain = definition.fallback_models
    source = "flag fallback-model" if flag else "fallback_models"
    for model in chain:
        if not _is_priced_model(model, prices):
            choices.problems.append(f"{source}: {model!r} has no price (ignored)")
        elif model not in choices.models:
            choices.models.append(model)


def _is_priced_model(model: str, prices: dict[str, ModelPrice]) -> bool:
    return "/" in model and model in prices


def _apply_tools(choices: Choices, definition: AgentDefinition, enabled: Any) -> None:
    if enabled is None:
        return
    if not isinstance(enabled, list) or not all(isinstance(t, str) for t in enabled):
        choices.problems.append("flag enabled-tools: not a list of tool names (all tools kept)")
        return
    unknown = sorted(set(enabled) - set(definition.tools))
    if unknown:
        choices.problems.append(f"flag enabled-tools: {', '.join(unknown)} not in the agent")
    choices.tools = [t for t in definition.tools if t in enabled]


def _apply_budgets(choices: Choices, overrides: Any) -> None:
    if not overrides:
        return
    if not isinstance(overrides, dict):
        choices.problems.append("flag budgets: not a JSON object (budgets as defined)")
        return
    try:
        choices.budgets = Budgets.model_validate(choices.budgets.model_dump() | overrides)
    except ValidationError as err:
        choices.problems.append(f"flag budgets: {one_line(err)} (budgets as defined)")


def _apply_quotas(choices: Choices, overrides: Any) -> None:
    """The `quotas` flag overrides the agent's `[quotas]` field by field, per scope kind."""
    if not overrides:
        return
    if not isinstance(overrides, dict):
        choices.problems.append("flag quotas: not a JSON object (quotas as defined)")
        return
    merged: dict[str, Any] = {"on_exceeded": choices.quotas.on_exceeded}
    for kind in ("user", "tenant", "agent"):
        limits: QuotaLimits | None = getattr(choices.quotas, kind)
        base = limits.model_dump() if limits else {}
        given = overrides.get(kind)
        merged[kind] = {**base, **given} if isinstance(given, dict) else base or None
    if "on_exceeded" in overrides:
        merged["on_exceeded"] = overrides["on_exceeded"]
    unknown = sorted(set(overrides) - set(merged))
    try:
        if unknown:
            raise ValueError(f"unknown keys {', '.join(unknown)}")
        choices.quotas = QuotaDefinition.model_validate(merged)
    except (ValidationError, ValueError) as err:
        message = one_line(err) if isinstance(err, ValidationError) else str(err)
        choices.problems.append(f"flag quotas: {message} (quotas as defined)")


def _shadow_candidate(choices: Choices, raw: Any, run_id: str | None) -> Candidate | None:
    if not raw:
        return None
    try:
        flag = ShadowFlag.model_validate(raw)
    except ValidationError as err:
        choices.problems.append(f"flag shadow: {error_parts(err)[1]} (no shadow run)")
        return None
    if not (flag.prompt_version or flag.model):
        return None
    if not _is_sampled(run_id or "", flag.sample_rate):
        return None
    return Candidate(prompt_version=flag.prompt_version, model=flag.model)


def _is_sampled(run_id: str, rate: float) -> bool:
    """Stable per run id, so a retried config activity makes the same choice."""
    bucket = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:4], "big") % 10_000
    return bucket < rate * 10_000
