"""What flag values choose for a run, and how bad values fall back to the agent's own."""

from __future__ import annotations

from typing import Any

from activities.flag_choices import choose
from opsready.agents import load_agent, load_pricing
from opsready.settings import PROJECT_ROOT
from workflows.types import Candidate, FlagEvaluation

AGENTS = PROJECT_ROOT / "agents"
DEFINITION, _ = load_agent(AGENTS, "support-triage")
PRICES = load_pricing(AGENTS)


def flags(**values: Any) -> dict[str, FlagEvaluation]:
    return {
        key.replace("_", "-"): FlagEvaluation(
            key=key.replace("_", "-"), value=value, variation=0, reason="FALLTHROUGH"
        )
        for key, value in values.items()
    }


def test_no_flags_means_the_agent_as_defined() -> None:
    choices = choose(DEFINITION, {}, PRICES)
    assert (choices.variant, choices.prompt_version, choices.models) == (
        "control",
        "v1",
        ["local/support-triage"],
    )
    assert choices.tools == ["search_kb", "lookup_order", "refund_order"]
    assert choices.problems == [] and choices.shadow is None


def test_variant_flag_applies_the_variant() -> None:
    choices = choose(DEFINITION, flags(agent_variant="candidate"), PRICES)
    assert (choices.variant, choices.prompt_version) == ("candidate", "v2")


def test_bad_values_fall_back_and_are_reported() -> None:
    choices = choose(
        DEFINITION,
        flags(
            agent_variant="nope",
            prompt_version="v9",
            model="openai/unpriced-model",
            enabled_tools="all",
            budgets={"max_steps": -1},
            shadow={"sample_rate": 7},
        ),
        PRICES,
    )
    assert (choices.variant, choices.prompt_version, choices.models) == (
        "control",
        "v1",
        ["local/support-triage"],
    )
    assert choices.budgets == DEFINITION.budgets and len(choices.tools) == 3
    assert choices.shadow is None
    joined = " | ".join(choices.problems)
    for fragment in (
        "no variant 'nope'",
        "no prompt version 'v9'",
        "unpriced-model",
        "enabled-tools",
        "flag budgets",
        "flag shadow",
    ):
        assert fragment in joined


def test_flags_narrow_tools_and_tighten_budgets() -> None:
    choices = choose(
        DEFINITION,
        flags(enabled_tools=["search_kb"], budgets={"max_steps": 2, "max_cost_usd": 0.01}),
        PRICES,
    )
    assert choices.tools == ["search_kb"]
    assert (choices.budgets.max_steps, choices.budgets.max_cost_usd) == (2, 0.01)


def test_unevaluated_flags_are_problems() -> None:
    missing = FlagEvaluation(
        key="model", value="", reason="ERROR", error="FLAG_NOT_FOUND", is_default=True
    )
    choices = choose(DEFINITION, {"model": missing}, PRICES)
    assert choices.models == ["local/support-triage"]
    assert choices.problems == ["flag model: FLAG_NOT_FOUND (default used)"]


def test_fallback_model_follows_the_primary_when_priced() -> None:
    choices = choose(DEFINITION, flags(fallback_model="openai/gpt-4o"), PRICES)
    assert choices.models == ["local/support-triage", "openai/gpt-4o"]
    unpriced = choose(DEFINITION, flags(fallback_model="openai/o9"), PRICES)
    assert unpriced.models == ["local/support-triage"]
    assert unpriced.problems == ["flag fallback-model: 'openai/o9' has no price (ignored)"]


def test_shadow_sampling_is_stable_per_run_and_follows_the_rate() -> None:
    shadow = flags(shadow={"prompt_version": "v2", "sample_rate": 0.3})
    picked = [
        choose(DEFINITION, shadow, PRICES, run_id=f"run-{i}").shadow is not None
        for i in range(2000)
    ]
    assert 0.25 < sum(picked) / len(picked) < 0.35
    again = choose(DEFINITION, shadow, PRICES, run_id="run-7").shadow is not None
    assert again == picked[7]
    assert (
        choose(
            DEFINITION, shadow, PRICES, run_id="run-7", shadow_of=Candidate(prompt_version="v2")
        ).shadow
        is None
    )  # a shadow never starts its own shadow
