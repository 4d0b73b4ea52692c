"""A model is one value (`ModelChoice`), and payloads recorded before that still read.

Histories hold `RunConfig` (the config activity's result, continue-as-new checkpoints) and
`ModelCallInput` (a model activity retried after an upgrade) in their old shape: provider,
model and price apart, and a `fallback_model` with its `fallback_price`.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from workflows.contract import Activity
from workflows.payloads import ModelCallInput, ModelChoice, ModelPrice, RunConfig
from workflows.types import AgentRunRequest

OLD_HISTORIES = Path(__file__).parent.parent / "histories" / "v1"
PRICE = {"input_per_million_usd": 0.15, "output_per_million_usd": 0.6}
DEAR = {"input_per_million_usd": 2.5, "output_per_million_usd": 10.0}


def _payload(payload: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(payload["data"]))


def recorded_config(history: str) -> dict[str, Any]:
    """The config activity's result in a history file, as recorded."""
    events = json.loads((OLD_HISTORIES / history).read_text())["events"]
    scheduled = next(
        e["eventId"]
        for e in events
        if e.get("activityTaskScheduledEventAttributes", {}).get("activityType", {}).get("name")
        == Activity.RESOLVE_CONFIG
    )
    completed = next(
        e["activityTaskCompletedEventAttributes"]
        for e in events
        if e.get("activityTaskCompletedEventAttributes", {}).get("scheduledEventId") == scheduled
    )
    return dict(_payload(completed["result"]["payloads"][0]))


def test_model_choice_is_provider_slash_model_with_its_price() -> None:
    choice = ModelChoice(model="openai/gpt-4o", price=ModelPrice.model_validate(DEAR))
    assert (choice.provider, choice.name) == ("openai", "gpt-4o")
    assert ModelChoice(model="ollama/library/llama3", price=choice.price).name == "library/llama3"
    for bad in ("gpt-4o", "/gpt-4o", "openai/", "openai/gpt 4o"):
        with pytest.raises(ValidationError):
            ModelChoice(model=bad, price=choice.price)


def test_a_recorded_config_of_the_old_shape_reads_as_one_model() -> None:
    old = recorded_config("agent_run-answered.json")
    assert (old["provider"], old["model"]) == ("local", "support-triage")  # the old shape
    config = RunConfig.model_validate(old)
    assert config.models == [ModelChoice(model="local/support-triage", price=old["price"])]
    assert config.primary.price.input_per_million_usd == 0.15
    assert "provider" not in config.model_dump()


def test_an_old_fallback_is_the_second_model_only_with_its_price() -> None:
    old = recorded_config("agent_run-approved-by-update.json")
    with_fallback = {**old, "fallback_model": "openai/gpt-4o", "fallback_price": DEAR}
    assert [m.model for m in RunConfig.model_validate(with_fallback).models] == [
        f"{old['provider']}/{old['model']}",
        "openai/gpt-4o",
    ]
    # The old workflow tried a fallback only when both were set.
    unpriced = {**old, "fallback_model": "openai/gpt-4o", "fallback_price": None}
    assert len(RunConfig.model_validate(unpriced).models) == 1


def test_a_recorded_checkpoint_of_the_old_shape_continues() -> None:
    started = json.loads((OLD_HISTORIES / "agent_run-continue-as-new-run2.json").read_text())
    attributes = started["events"][0]["workflowExecutionStartedEventAttributes"]
    request = AgentRunRequest.model_validate(_payload(attributes["input"]["payloads"][0]))
    assert request.checkpoint is not None
    assert [m.model for m in request.checkpoint.config.models] == ["scripted/test"]


def test_a_model_call_scheduled_in_the_old_shape_reads() -> None:
    call = ModelCallInput.model_validate(
        {
            "run_id": "r",
            "agent": "support-triage",
            "step": 1,
            "provider": "local",
            "model": "support-triage",
            "prompt_version": "v1",
            "messages": [],
            "tools": [],
            "max_output_tokens": 100,
            "price": PRICE,
        }
    )
    assert call.model == ModelChoice(model="local/support-triage", price=ModelPrice(**PRICE))
