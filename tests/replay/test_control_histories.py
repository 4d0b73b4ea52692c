"""What the controls add to a run's history: agents with quotas or an answer cache record
their patch and their ledger or cache activities; agents without record none of them, so
a run pays for a control only when its agent turns it on. With issue 9's hardening, their
stops close the run Failed and every model of a fallback chain but the last is called with
the fast retry budget; their histories recorded before it keep replaying."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.replay.recorder import HISTORY_DIR, activity_types, load_history, patch_ids
from workflows.cached_answers import ANSWER_CACHE_PATCH
from workflows.calls import MODEL_RETRY
from workflows.contract import Activity, ErrorType
from workflows.payloads import ModelRetryBudget
from workflows.quota_calls import QUOTA_PATCH
from workflows.run_end import END_PATCH

CONTROL_ACTIVITIES = {
    Activity.QUOTA_APPLY,
    Activity.ANSWER_CACHE_LOOKUP,
    Activity.ANSWER_CACHE_STORE,
}


def test_quota_and_cache_histories_record_their_patch_and_activities() -> None:
    quota = load_history(HISTORY_DIR / "agent_run-quota-within-budget.json")
    assert QUOTA_PATCH in patch_ids(quota)
    assert Activity.QUOTA_APPLY in activity_types(quota)
    cached = load_history(HISTORY_DIR / "agent_run-answered-from-cache.json")
    assert ANSWER_CACHE_PATCH in patch_ids(cached)
    assert activity_types(cached) >= {Activity.ANSWER_CACHE_LOOKUP}
    assert Activity.MODEL_CHAT not in activity_types(cached)  # answered without a model call


def test_runs_of_agents_without_controls_make_no_control_calls() -> None:
    for name in ("completed-without-approval", "approved-by-update", "model-fallback"):
        history = load_history(HISTORY_DIR / f"agent_run-{name}.json")
        assert not activity_types(history) & CONTROL_ACTIVITIES, name
        assert not patch_ids(history) & {QUOTA_PATCH, ANSWER_CACHE_PATCH}, name


# The controls' scenarios in two generations: recorded before the hardening of issue 9
# (`…-before-end-in-temporal-terms.json`, every run closing Completed) and on the merged code.
CONTROL_SCENARIOS = (
    "quota-within-budget",
    "quota-exceeded",
    "guardrail-blocked-input",
    "fallback-chain-breaker-open",
    "breaker-escalated",
    "answered-from-cache",
)


def _payload(payload: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(payload["data"]))


def _close(name: str) -> dict[str, Any]:
    return json.loads((HISTORY_DIR / f"agent_run-{name}.json").read_text())["events"][-1]


def test_control_histories_cover_both_generations_of_how_a_run_ends() -> None:
    for name in CONTROL_SCENARIOS:
        before = load_history(HISTORY_DIR / f"agent_run-{name}-before-{END_PATCH}.json")
        assert END_PATCH not in patch_ids(before), name
        assert END_PATCH in patch_ids(load_history(HISTORY_DIR / f"agent_run-{name}.json")), name


def test_quota_and_guardrail_stops_close_failed_with_the_typed_result() -> None:
    for name, error_type, status, stop_reason in (
        ("quota-exceeded", ErrorType.RUN_BUDGET_EXCEEDED, "budget_exceeded", "quota_exceeded"),
        ("guardrail-blocked-input", ErrorType.RUN_FAILED, "failed", "guardrail"),
    ):
        failure = _close(name)["workflowExecutionFailedEventAttributes"]["failure"]
        assert failure["applicationFailureInfo"]["type"] == error_type, name
        result = _payload(failure["applicationFailureInfo"]["details"]["payloads"][0])
        assert (result["status"], result["stop_reason"]) == (status, stop_reason), name
        # Before the end patch the same stop completed the run.
        before = _close(f"{name}-before-{END_PATCH}")
        assert "workflowExecutionCompletedEventAttributes" in before, name


def test_every_model_of_a_fallback_chain_but_the_last_gets_the_fast_retry_budget() -> None:
    events = json.loads((HISTORY_DIR / "agent_run-fallback-chain-breaker-open.json").read_text())
    chain = [
        (request["model"]["model"], request["fallback_after"], scheduled["retryPolicy"])
        for event in events["events"]
        if (scheduled := event.get("activityTaskScheduledEventAttributes"))
        and scheduled["activityType"]["name"] == Activity.MODEL_CHAT
        and (request := _payload(scheduled["input"]["payloads"][0]))
    ]
    assert [model for model, _, _ in chain] == [
        "scripted/test",
        "scripted/second",
        "scripted/backup",
    ]
    budget = ModelRetryBudget()  # the settings' defaults: 3 attempts or 5 s
    for _, fallback_after, policy in chain[:-1]:
        assert ModelRetryBudget.model_validate(fallback_after) == budget
        assert policy["maximumAttempts"] == budget.max_attempts
    _, last_budget, last_policy = chain[-1]
    assert last_budget is None and last_policy["maximumAttempts"] == MODEL_RETRY.maximum_attempts
