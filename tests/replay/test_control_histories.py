"""What the controls add to a run's history: agents with quotas or an answer cache record
their patch and their ledger or cache activities; agents without record none of them, so
a run pays for a control only when its agent turns it on. With issue 9's hardening, their
stops close the run Failed and every model of a fallback chain but the last is called with
the fast retry budget; on the lean path (issue 13) their model and tool activities check
the kill switches themselves. Their histories recorded before each keep replaying."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.replay.recorder import HISTORY_DIR, V2_DIR, activity_types, load_history, patch_ids
from workflows.agent_run import LEAN_RUN_HARDENED_PATCH
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


# The controls' scenarios in three generations: in v2/, recorded before the hardening of
# issue 9 (`…-before-end-in-temporal-terms.json`, every run closing Completed) and with it
# (END_PATCH), both without a lean marker; and the current ones, on the hardened lean path.
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


def _close(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())["events"][-1]


def _inputs(path: Path, activity: str) -> list[dict[str, Any]]:
    """The input of every activity of that type the history scheduled."""
    return [
        _payload(scheduled["input"]["payloads"][0])
        for event in json.loads(path.read_text())["events"]
        if (scheduled := event.get("activityTaskScheduledEventAttributes"))
        and scheduled["activityType"]["name"] == activity
    ]


def test_control_histories_cover_every_generation_of_how_a_run_ends() -> None:
    for name in CONTROL_SCENARIOS:
        before = load_history(V2_DIR / f"agent_run-{name}-before-{END_PATCH}.json")
        assert END_PATCH not in patch_ids(before), name
        hardened = patch_ids(load_history(V2_DIR / f"agent_run-{name}.json"))
        assert END_PATCH in hardened and LEAN_RUN_HARDENED_PATCH not in hardened, name
        lean = patch_ids(load_history(HISTORY_DIR / f"agent_run-{name}.json"))
        assert LEAN_RUN_HARDENED_PATCH in lean and END_PATCH not in lean, name


def test_lean_control_runs_check_kill_switches_inside_their_activities() -> None:
    # The controls' model path (guardrails, breaker, pacer) and tool activity are asked to
    # check the switches; no kill-switch local activity is made (none of these runs asks a
    # human about a tool).
    for name in CONTROL_SCENARIOS:
        path = HISTORY_DIR / f"agent_run-{name}.json"
        calls = _inputs(path, Activity.MODEL_CHAT) + _inputs(path, Activity.TOOL_RUN)
        assert all(call["check_kill_switch"] for call in calls), name
        events = json.loads(path.read_text())["events"]
        markers = {
            e["markerRecordedEventAttributes"]["markerName"]
            for e in events
            if "markerRecordedEventAttributes" in e
        }
        assert "core_local_activity" not in markers, name


def test_quota_and_guardrail_stops_close_failed_with_the_typed_result() -> None:
    for name, error_type, status, stop_reason in (
        ("quota-exceeded", ErrorType.RUN_BUDGET_EXCEEDED, "budget_exceeded", "quota_exceeded"),
        ("guardrail-blocked-input", ErrorType.RUN_FAILED, "failed", "guardrail"),
    ):
        for path in (HISTORY_DIR / f"agent_run-{name}.json", V2_DIR / f"agent_run-{name}.json"):
            failure = _close(path)["workflowExecutionFailedEventAttributes"]["failure"]
            assert failure["applicationFailureInfo"]["type"] == error_type, path
            result = _payload(failure["applicationFailureInfo"]["details"]["payloads"][0])
            assert (result["status"], result["stop_reason"]) == (status, stop_reason), path
        # Before the end patch the same stop completed the run.
        before = _close(V2_DIR / f"agent_run-{name}-before-{END_PATCH}.json")
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
