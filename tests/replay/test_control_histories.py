"""What the controls add to a run's history: agents with quotas or an answer cache record
their patch and their ledger or cache activities; agents without record none of them, so
a run pays for a control only when its agent turns it on."""

from __future__ import annotations

from tests.replay.recorder import HISTORY_DIR, activity_types, load_history, patch_ids
from workflows.cached_answers import ANSWER_CACHE_PATCH
from workflows.contract import Activity
from workflows.quota_calls import QUOTA_PATCH

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
