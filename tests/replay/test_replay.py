"""Golden histories replay against the current workflow code (the upgrade-safety gate).

A failure here means a change to workflow code would break runs already in flight: the
message names the file, the workflow and the event where the code diverged. Guard the change
with `workflow.patched` or ship it as a new Worker Deployment Version, then re-record with
`make histories` (README: "Changing workflow code").
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.replay.recorder import (
    FILE_PREFIX,
    GENERATION_DIRS,
    HISTORY_DIR,
    LEGACY_SCENARIOS,
    ROLLOUT_FILE_PREFIX,
    V1_DIR,
    V2_DIR,
    V3_DIR,
    V4_DIR,
    ReplayReport,
    display_name,
    file_names,
    golden_histories,
    history_path,
    is_current,
    load_history,
    patch_ids,
    replay_histories,
)
from tests.replay.rollout_scenarios import ROLLOUT_SCENARIOS
from tests.replay.scenarios import SCENARIOS
from workers.app import WORKFLOWS
from workflows.agent_run import LEAN_RUN_HARDENED_PATCH, LEAN_RUN_PATCH
from workflows.contract import Activity
from workflows.kill_switches import KILL_SWITCH_PATCH
from workflows.run_end import END_PATCH
from workflows.types import RunStatus, StopReason

HISTORIES = golden_histories()
AGENT_RUN_HISTORIES = [path for path in HISTORIES if path.name.startswith(FILE_PREFIX)]


@pytest.fixture(scope="module")
async def replays() -> dict[Path, ReplayReport]:
    """Every golden history replayed once, all by one replay worker (a worker per file cost
    about a second each); each file still has its own report and test below."""
    return {report.path: report for report in await replay_histories(HISTORIES, WORKFLOWS)}


@pytest.mark.parametrize("path", HISTORIES, ids=display_name)
def test_golden_history_replays(path: Path, replays: dict[Path, ReplayReport]) -> None:
    report = replays[path]
    assert report.is_ok, report.describe()


# --- what the histories cover -------------------------------------------------------------


@dataclass
class Facts:
    """What one history shows: statuses it passed through, how it ended, its patches."""

    statuses: set[str] = field(default_factory=set)
    stop_reason: str | None = None
    approvals: list[dict[str, Any]] = field(default_factory=list)
    signals: set[str] = field(default_factory=set)
    updates: set[str] = field(default_factory=set)
    patches: set[str] = field(default_factory=set)

    def add_result(self, result: dict[str, Any]) -> None:
        """The run's typed result, however Temporal closed it (workflows.run_end)."""
        self.statuses.add(result["status"])
        self.stop_reason = result["stop_reason"]
        self.approvals = result["approvals"]


def _payload(payload: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(payload["data"]))


def facts(path: Path) -> Facts:
    found = Facts(patches=patch_ids(load_history(path)))
    for event in json.loads(path.read_text())["events"]:
        if upsert := event.get("upsertWorkflowSearchAttributesEventAttributes"):
            status = upsert["searchAttributes"]["indexedFields"].get("AgentStatus")
            if status is not None:
                found.statuses.add(_payload(status))
        elif signal := event.get("workflowExecutionSignaledEventAttributes"):
            found.signals.add(signal["signalName"])
        elif update := event.get("workflowExecutionUpdateAcceptedEventAttributes"):
            found.updates.add(update["acceptedRequest"]["input"]["name"])
        elif scheduled := event.get("activityTaskScheduledEventAttributes"):
            if scheduled["activityType"]["name"] == Activity.CLOSE_HALTED:  # closes Canceled
                found.add_result(_payload(scheduled["input"]["payloads"][0])["result"])
        elif completed := event.get("workflowExecutionCompletedEventAttributes"):
            found.add_result(_payload(completed["result"]["payloads"][0]))
        elif failed := event.get("workflowExecutionFailedEventAttributes"):
            details = failed["failure"]["applicationFailureInfo"]["details"]
            found.add_result(_payload(details["payloads"][0]))
    return found


@pytest.fixture(scope="module")
def all_facts() -> dict[str, Facts]:
    """Facts of every AgentRun history, by display name (`v1/...` for the kept old ones)."""
    return {display_name(path): facts(path) for path in AGENT_RUN_HISTORIES}


@pytest.fixture(scope="module")
def current_facts() -> dict[str, Facts]:
    """The current recordings alone: what they cover must not depend on the old ones."""
    return {display_name(p): facts(p) for p in AGENT_RUN_HISTORIES if is_current(p)}


def test_every_scenario_has_its_golden_histories() -> None:
    expected = [history_path(HISTORY_DIR, name) for s in SCENARIOS for name in file_names(s)] + [
        history_path(HISTORY_DIR, s.name, ROLLOUT_FILE_PREFIX) for s in ROLLOUT_SCENARIOS
    ]
    expected += [history_path(V1_DIR, name) for name in LEGACY_SCENARIOS]
    missing = sorted(display_name(path) for path in expected if not path.exists())
    assert not missing, f"no golden history for {missing}: run `make histories`"
    assert all(list(directory.glob(f"{FILE_PREFIX}*.json")) for directory in GENERATION_DIRS)


def recorded_config(path: Path) -> dict[str, Any]:
    """The config activity's result in a history (absent when the run never got one)."""
    for event in json.loads(path.read_text())["events"]:
        completed = event.get("activityTaskCompletedEventAttributes") or {}
        payloads = completed.get("result", {}).get("payloads", [{}])
        result = _payload(payloads[0]) if "data" in payloads[0] else None
        if isinstance(result, dict) and "system_prompt" in result:
            return result
    return {}


def test_histories_hold_both_payload_shapes_of_the_model() -> None:
    # The kept old ones have provider, model and price apart; the current ones `models`.
    old = [recorded_config(p) for p in AGENT_RUN_HISTORIES if p.parent == V1_DIR]
    new = [recorded_config(p) for p in AGENT_RUN_HISTORIES if p.parent == HISTORY_DIR]
    assert [c for c in old if c] and all("provider" in c for c in old if c)
    assert [c for c in new if c] and all("models" in c for c in new if c)


def test_rollout_histories_cover_every_way_its_approval_ends() -> None:
    outcomes = set()
    for path in HISTORY_DIR.glob(f"{ROLLOUT_FILE_PREFIX}*.json"):  # the current recordings
        last = json.loads(path.read_text())["events"][-1]
        result = _payload(
            last["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]
        )
        outcomes.add((result["approval"] or {}).get("outcome"))
    assert {"approved", "rejected", "timed_out", None} <= outcomes


def test_golden_histories_cover_every_status_and_stop_reason(
    current_facts: dict[str, Facts],
) -> None:
    statuses = set().union(*(f.statuses for f in current_facts.values()))
    assert not {s.value for s in RunStatus} - statuses, "statuses without a golden history"
    stop_reasons = {f.stop_reason for f in current_facts.values()}
    assert not {r.value for r in StopReason} - stop_reasons, "stop reasons without a history"


def test_golden_histories_cover_every_approval_path(current_facts: dict[str, Facts]) -> None:
    paths = {
        (a["outcome"], a["was_escalated"], via)
        for f in current_facts.values()
        for a in f.approvals
        for via in (f.signals & {"approval_decision", "halt"}) | f.updates or {"timeout"}
    }
    for path in [
        ("approved", False, "approval_decision"),  # the signal (Temporal UI, service code)
        ("approved", False, "decide"),  # the update (the `opsready approve` CLI)
        ("approved", True, "decide"),  # by the escalation target, after escalation
        ("rejected", False, "approval_decision"),
        ("timed_out", True, "timeout"),  # nobody decided: fails closed after escalation
        ("timed_out", False, "timeout"),  # the run's own deadline came first
        ("halted", False, "halt"),
    ]:
        assert path in paths, f"no golden history for approval path {path}"


def test_golden_histories_cover_every_patch_generation(all_facts: dict[str, Facts]) -> None:
    def recorded_with(patch: str) -> set[str]:
        return {name for name, f in all_facts.items() if patch in f.patches}

    def kept_in(directory: Path) -> set[str]:
        return {name for name in all_facts if name.startswith(f"{directory.name}/")}

    hardened, lean = recorded_with(LEAN_RUN_HARDENED_PATCH), recorded_with(LEAN_RUN_PATCH)
    checked, ended = recorded_with(KILL_SWITCH_PATCH), recorded_with(END_PATCH)
    # Runs started before each patch must keep replaying until it is retired.
    assert {f"v1/{FILE_PREFIX}{name}.json" for name in LEGACY_SCENARIOS} <= (
        set(all_facts) - hardened - lean - checked
    )
    assert checked & kept_in(V2_DIR) and ended & kept_in(V2_DIR)  # main before the lean run
    assert kept_in(V3_DIR) and kept_in(V3_DIR) <= lean  # wip/overhead's lean runs
    assert kept_in(V4_DIR) and kept_in(V4_DIR) <= hardened  # main's, before the controls
    assert not (hardened & lean), "a run records one lean marker or the other"
    # Every current scenario is recorded on the hardened lean path, which closes in
    # Temporal's terms without END_PATCH's own marker and checks its switches without
    # asking kill-switch-checks.
    current = {
        display_name(history_path(HISTORY_DIR, name)) for s in SCENARIOS for name in file_names(s)
    }
    assert current <= hardened
    assert not current & (ended | checked)
