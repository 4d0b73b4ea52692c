"""The replay gate stops an unguarded reordering of AgentRun's commands, and lets the same
change through behind `workflow.patched`.

The change: give approvers a quiet period. Today a run notifies its approvers, then waits;
changed, it first waits up to a minute for a decision (someone watching the UI) and pages
only when none came. That puts a timer before the notify activity, so every history that
notified approvers no longer replays, unless the change is patched.

The patched class asks `workflow.patched` once, at the top of `run`: the run's first
workflow task holds only its start, so the recording and every replay ask in the same task.
It used to ask inside `notify`, right after the tool's kill-switch local activity, in
whichever task that result landed; a replay that asks in another task than the recording
did fails with "Non-deprecated patch marker encountered ... no corresponding change
command", which this test did once under load (issue 8).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.common import VersioningBehavior

from tests.replay.recorder import (
    LEGACY_SCENARIOS,
    V1_DIR,
    activity_types,
    display_name,
    golden_histories,
    history_path,
    load_history,
    patch_ids,
    play,
    replay_histories,
)
from tests.replay.scenarios import SCENARIOS, scenario_rig, time_skipping_env
from workflows.agent_run import LEAN_RUN_HARDENED_PATCH, AgentRunWorkflow
from workflows.approvals import ApprovalBook
from workflows.canary_rollout import CanaryRolloutWorkflow
from workflows.contract import AGENT_RUN_WORKFLOW, Activity
from workflows.payloads import RunConfig
from workflows.types import AgentRunResult, PendingApproval

HISTORIES = golden_histories()
QUIET_SECONDS = 60
QUIET_PATCH = "approval-quiet-period"
PINNED = VersioningBehavior.PINNED


# Unsandboxed: the gate is about the commands a class emits, which the sandbox does not
# change, and the sandbox would re-import this test module (and its I/O) for every run.
async def decided_within(book: ApprovalBook, pending: PendingApproval, seconds: float) -> bool:
    try:
        await workflow.wait_condition(lambda: book.is_decided(pending.request_id), timeout=seconds)
    except TimeoutError:
        return False
    return True


@workflow.defn(name=AGENT_RUN_WORKFLOW, versioning_behavior=PINNED, sandboxed=False)
class UnguardedQuietPeriod(AgentRunWorkflow):
    @workflow.run
    async def run(self, *args: Any) -> AgentRunResult:
        return await super().run(*args)

    async def notify(
        self, config: RunConfig, pending: PendingApproval, recipients: list[str], escalate: bool
    ) -> None:
        if not escalate and await decided_within(self._approvals, pending, QUIET_SECONDS):
            return  # decided before anyone had to be paged
        await super().notify(config, pending, recipients, escalate)


@workflow.defn(name=AGENT_RUN_WORKFLOW, versioning_behavior=PINNED, sandboxed=False)
class PatchedQuietPeriod(AgentRunWorkflow):
    @workflow.run
    async def run(self, *args: Any) -> AgentRunResult:
        self._has_quiet_period = workflow.patched(QUIET_PATCH)  # first task: see docstring
        return await super().run(*args)

    async def notify(
        self, config: RunConfig, pending: PendingApproval, recipients: list[str], escalate: bool
    ) -> None:
        is_quiet = self._has_quiet_period and not escalate
        if is_quiet and await decided_within(self._approvals, pending, QUIET_SECONDS):
            return
        await super().notify(config, pending, recipients, escalate)


def first_task_markers(history: WorkflowHistory) -> list[str]:
    """The patch ids recorded by the run's first workflow task (before its first activity)."""
    ids = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            break
        marker = event.marker_recorded_event_attributes
        if (
            event.HasField("marker_recorded_event_attributes")
            and marker.marker_name == "core_patch"
        ):
            ids.append(json.loads(marker.details["patch-data"].payloads[0].data)["id"])
    return ids


def notifies_approvers(path: Path) -> bool:
    return Activity.NOTIFY_APPROVERS in activity_types(load_history(path))


def test_changed_classes_keep_every_handler_of_agent_run() -> None:
    # `_Definition` is the SDK's own record of what a class registers (no public accessor).
    base = workflow._Definition.must_from_class(AgentRunWorkflow)
    for changed in (UnguardedQuietPeriod, PatchedQuietPeriod):
        defn = workflow._Definition.must_from_class(changed)
        assert defn.name == AGENT_RUN_WORKFLOW
        assert defn.versioning_behavior is VersioningBehavior.PINNED
        assert (
            set(defn.signals)
            == set(base.signals)
            == {
                "approval_decision",
                "halt",
            }
        )
        assert set(defn.queries) == set(base.queries) == {"state"}
        assert set(defn.updates) == set(base.updates) == {"decide", "halt"}


async def test_unguarded_reordering_fails_the_gate_naming_workflow_and_event() -> None:
    reports = await replay_histories(HISTORIES, [UnguardedQuietPeriod, CanaryRolloutWorkflow])

    failed = {r.path for r in reports if not r.is_ok}
    expected = {path for path in HISTORIES if notifies_approvers(path)}
    assert {history_path(V1_DIR, n) for n in LEGACY_SCENARIOS} & expected  # old runs too
    assert failed == expected  # every run that paged approvers, and only those
    for report in (r for r in reports if not r.is_ok):
        message = report.describe()
        assert report.workflow_type == AGENT_RUN_WORKFLOW
        assert report.workflow_id and not report.workflow_id.startswith("agent_run-")
        where = f"{display_name(report.path)}: workflow AgentRun (id {report.workflow_id})"
        assert where in message
        # Where it diverged: the notify activity the history has and the changed code lacks.
        assert report.event_type == "ActivityTaskScheduled", message
        assert f"at event {report.event_id} ActivityTaskScheduled" in message
        assert f"activity {Activity.NOTIFY_APPROVERS}" in message
        assert "NondeterminismError" in message and "[TMPRL1100]" in message


async def test_patched_reordering_replays_old_histories_and_its_own(tmp_path: Path) -> None:
    patched = [PatchedQuietPeriod, CanaryRolloutWorkflow]
    old = await replay_histories(HISTORIES, patched)
    assert [r.describe() for r in old if not r.is_ok] == []

    # A run on the patched code: decided within the quiet period, so nobody was paged.
    by_update = next(s for s in SCENARIOS if s.name == "approved-by-update")
    async with time_skipping_env() as env, scenario_rig(env, tmp_path, workflows=patched) as rig:
        [(name, history, result)] = await play(rig, by_update)
    path = tmp_path / f"agent_run-{name}-patched.json"
    path.write_text(history.to_json())
    assert result.approvals[0].approver == "bob"
    # A hardened lean run closes in Temporal's terms without END_PATCH's own marker.
    assert patch_ids(history) == {LEAN_RUN_HARDENED_PATCH, QUIET_PATCH}
    # Both asked where replays ask them too: the test's, then AgentRun's own.
    assert first_task_markers(history) == [QUIET_PATCH, LEAN_RUN_HARDENED_PATCH]
    assert not notifies_approvers(path)

    [report] = await replay_histories([path], patched)
    assert report.is_ok, report.describe()
