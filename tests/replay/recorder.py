"""`make histories` (`opsready history record`): golden histories of every status and approval path, and the
replay check that reads them.

Recording plays `tests.replay.scenarios.SCENARIOS` on a throw-away time-skipping server
and writes each run's history as `tests/histories/agent_run-<scenario>.json`, then the
rollouts of `tests.replay.rollout_scenarios` as `canary_rollout-<scenario>.json`. Older
generations stay in `tests/histories/v1/` to `v5/` (GENERATION_DIRS). The replay tests
(tests/replay/) replay every file against the current workflow code; `replay_history`
reports a failure with the file, the workflow and the event where the code diverged.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from opsready.errors import OpsreadyError
from opsready.logs import configure_logging
from opsready.plugin import sandboxed_runner
from opsready.runs import run_result
from opsready.settings import Settings
from tests.fakes.canary import Canary, canary_rig
from tests.replay.rollout_scenarios import ROLLOUT_SCENARIOS, RolloutScenario
from tests.replay.scenarios import SCENARIOS, Rig, Scenario, scenario_rig, time_skipping_env
from workflows.rollout_types import RolloutState
from workflows.types import AgentRunResult

# `make histories` writes here: the current code's recordings.
HISTORY_DIR = Path(__file__).parent.parent / "histories"
# Older generations, each kept as it was recorded, never re-recorded: they prove runs
# started on that code still replay. A generation ends when `make histories` is about to
# overwrite recordings a change made obsolete: `git mv` them into the next `vN/` first.
# v1: before `RunConfig.models` (a model as one value), in the old payload shapes.
V1_DIR = HISTORY_DIR / "v1"
# v2: main before the lean run (issue 13): the `kill-switch-checks` generation and issue
# 9's scenarios (closing in Temporal's terms), as tests/histories/ held them; with the
# controls' scenarios (issue 12) as wip/int-controls recorded them, on that same path
# (`…-before-end-in-temporal-terms.json`: as wip/controls-loop did, before issue 9).
V2_DIR = HISTORY_DIR / "v2"
# v3: the `lean-run` patch as wip/overhead recorded it, before it met issue 9's hardening.
V3_DIR = HISTORY_DIR / "v3"
# v4: main's `lean-run-hardened` recordings before the controls (issue 12) were merged:
# the same commands as today's, in the payload shapes of that build.
V4_DIR = HISTORY_DIR / "v4"
# v5: the runs that end without completing, as recorded before patch
# `stop-reason-attribute` (AgentStopReason with the last upsert).
V5_DIR = HISTORY_DIR / "v5"
GENERATION_DIRS = (V1_DIR, V2_DIR, V3_DIR, V4_DIR, V5_DIR)
# Among v1, recorded by the demo before the kill-switch patch: runs started on that code.
LEGACY_SCENARIOS = ("answered", "approved", "rejected", "halted")
FILE_PREFIX = "agent_run-"
ROLLOUT_FILE_PREFIX = "canary_rollout-"


def golden_histories() -> list[Path]:
    """Every golden history, the current recordings and every kept generation."""
    kept = [path for directory in GENERATION_DIRS for path in directory.glob("*.json")]
    return sorted([*HISTORY_DIR.glob("*.json"), *kept])


def is_current(path: Path) -> bool:
    """Recorded by `make histories` on the current code (not a kept generation)."""
    return path.parent == HISTORY_DIR


def display_name(path: Path) -> str:
    """`agent_run-x.json`, or `v1/agent_run-x.json` for a kept old one."""
    return str(path.relative_to(HISTORY_DIR)) if path.is_relative_to(HISTORY_DIR) else path.name


def history_path(out_dir: Path, name: str, prefix: str = FILE_PREFIX) -> Path:
    return out_dir / f"{prefix}{name}.json"


def file_names(scenario: Scenario) -> list[str]:
    """The histories a scenario records: one per run of its chain, then its shadow twin."""
    runs = [f"{scenario.name}-run{i}" for i in range(1, scenario.runs + 1)]
    twin = [f"{scenario.name}-twin"] if scenario.has_twin else []
    return (runs if scenario.runs > 1 else [scenario.name]) + twin


# --- recording ------------------------------------------------------------------------------


def record(settings: Settings, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(level="ERROR")  # the list of files is the output
    started = time.monotonic()
    written = asyncio.run(_record(settings, out_dir))
    print(f"recorded {len(written)} histories in {time.monotonic() - started:.1f}s")
    return written


async def _record(settings: Settings, out_dir: Path) -> list[Path]:
    clash = {name for s in SCENARIOS for name in file_names(s)} & set(LEGACY_SCENARIOS)
    if clash:
        raise OpsreadyError(f"scenario names {sorted(clash)} would overwrite pre-patch histories")
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        async with time_skipping_env() as env, scenario_rig(env, Path(scratch), settings) as rig:
            for scenario in SCENARIOS:
                await rig.serve_flags(scenario.flags)
                for name, history, result in await play(rig, scenario):
                    path = history_path(out_dir, name)
                    path.write_text(history.to_json())
                    written.append(path)
                    ended = _ending(history) or result.status.value
                    print(f"wrote {path} ({ended}, {len(history.events)} events)")
        # A server of their own: on the one above, moving the clock by a whole soak after
        # the agent runs timed out (an RPC error), on a fresh one it does not.
        async with time_skipping_env() as env:
            for rollout in ROLLOUT_SCENARIOS:
                async with canary_rig(env, Path(tempfile.mkdtemp(dir=scratch))) as canary:
                    history, state = await play_rollout(canary, rollout)
                path = history_path(out_dir, rollout.name, ROLLOUT_FILE_PREFIX)
                path.write_text(history.to_json())
                written.append(path)
                print(f"wrote {path} ({state.status}, {len(history.events)} events)")
    return written


async def play(rig: Rig, scenario: Scenario) -> list[tuple[str, WorkflowHistory, AgentRunResult]]:
    """Play one scenario; the histories of its runs, named, with the run's result. Raises
    when the run did not end the way the scenario says (a broken recording, not a history)."""
    client = rig.client
    workflow_id = f"golden-{scenario.name}-{uuid.uuid4().hex[:6]}"
    handle = await scenario.play(rig, workflow_id)
    result = await run_result(handle)
    status, stop_reason = scenario.ends
    _check(scenario.name, result, status.value, stop_reason.value)
    assert handle.first_execution_run_id is not None
    chain = await fetch_chain(client, workflow_id, handle.first_execution_run_id)
    if len(chain) != scenario.runs:
        raise OpsreadyError(
            f"scenario {scenario.name}: {len(chain)} runs in its chain, expected {scenario.runs}"
        )
    names = file_names(scenario)
    taken = [
        (name, _with_workflow_id(history, workflow_id), result)
        for name, history in zip(names, chain, strict=False)
    ]
    if scenario.has_twin:
        if result.shadow_run_id is None:
            raise OpsreadyError(f"scenario {scenario.name}: no shadow run was started")
        twin = client.get_workflow_handle(result.shadow_run_id, result_type=AgentRunResult)
        twin_result = await run_result(twin)
        _check(f"{scenario.name} twin", twin_result, status.value, None)
        history = await twin.fetch_history()
        taken.append((names[-1], _with_workflow_id(history, twin.id), twin_result))
    return taken


async def play_rollout(
    canary: Canary, scenario: RolloutScenario
) -> tuple[WorkflowHistory, RolloutState]:
    """Play one rollout scenario; its history and final state. Raises when it did not end
    (or decide its approval) the way the scenario says."""
    handle, state = await scenario.play(canary)
    approval = state.approval.outcome if state.approval else None
    if (state.status, approval) != (scenario.ends, scenario.approval):
        raise OpsreadyError(
            f"rollout scenario {scenario.name} ended {state.status} (approval {approval}: "
            f"{state.reason}), expected {scenario.ends} (approval {scenario.approval})"
        )
    return _with_workflow_id(await handle.fetch_history(), handle.id), state


def _check(name: str, result: AgentRunResult, status: str, stop_reason: str | None) -> None:
    got = (result.status.value, result.stop_reason.value if result.stop_reason else None)
    if got[0] != status or (stop_reason is not None and got[1] != stop_reason):
        raise OpsreadyError(
            f"scenario {name} ended {got[0]} ({got[1]}: {result.reason}), "
            f"expected {status} ({stop_reason})"
        )


def _with_workflow_id(history: WorkflowHistory, workflow_id: str) -> WorkflowHistory:
    """The time-skipping server leaves the start event's workflowId empty (a real server fills
    it): fill it, so the file names its workflow and a replay failure can say which it was."""
    started = history.events[0].workflow_execution_started_event_attributes
    if not started.workflow_id:
        started.workflow_id = workflow_id
    return history


def _ending(history: WorkflowHistory) -> str | None:
    last = history.events[-1]
    if last.HasField("workflow_execution_continued_as_new_event_attributes"):
        return "continued as new"
    return None


async def fetch_chain(client: Client, workflow_id: str, first_run_id: str) -> list[WorkflowHistory]:
    """The histories of every run of a continue-as-new chain, first run first."""
    chain = []
    run_id: str | None = first_run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        chain.append(history)
        last = history.events[-1]
        run_id = None
        if last.HasField("workflow_execution_continued_as_new_event_attributes"):
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return chain


# --- replaying ------------------------------------------------------------------------------

# sdk-core names the history event it could not match: "... HistoryEvent(id: 44, ActivityTaskScheduled)"
_EVENT = re.compile(r"HistoryEvent\(id: (\d+), (\w+)")


@dataclass(frozen=True)
class ReplayReport:
    """One history replayed: ok, or why not, in words that name the file, workflow and event."""

    path: Path
    workflow_type: str
    workflow_id: str
    failure: Exception | None
    event_id: int | None = None
    event_type: str | None = None
    event_detail: str | None = None

    @property
    def is_ok(self) -> bool:
        return self.failure is None

    def describe(self) -> str:
        name = display_name(self.path)
        if self.failure is None:
            return f"{name}: workflow {self.workflow_type} (id {self.workflow_id}) replays"
        where = (
            f"at event {self.event_id} {self.event_type}"
            + (f" ({self.event_detail})" if self.event_detail else "")
            if self.event_id is not None
            else "at an event the SDK did not name"
        )
        kind = type(self.failure).__name__
        return (
            f"{name}: workflow {self.workflow_type} (id {self.workflow_id}) no longer "
            f"replays: {kind} {where}. Guard the change with workflow.patched or ship it as a "
            f"new Worker Deployment Version (README: Changing workflow code). SDK: {self.failure}"
        )


def load_history(path: Path) -> WorkflowHistory:
    """A history file as written by `opsready history record` or `temporal workflow show -o json`;
    the workflow id comes from its start event (the file name when the event lacks it)."""
    data = json.loads(path.read_text())
    started = data["events"][0].get("workflowExecutionStartedEventAttributes", {})
    return WorkflowHistory.from_json(started.get("workflowId") or path.stem, data)


async def replay_history(path: Path, workflows: Sequence[type]) -> ReplayReport:
    [report] = await replay_histories([path], workflows)
    return report


async def replay_histories(paths: Sequence[Path], workflows: Sequence[type]) -> list[ReplayReport]:
    """Replay each file against `workflows` (one replay worker for all); a report per file."""
    # The workers' own sandbox (opsready.plugin): replayed as they run, with the deterministic
    # modules passed through instead of re-imported for every history.
    replayer = Replayer(
        workflows=workflows,
        data_converter=pydantic_data_converter,
        workflow_runner=sandboxed_runner(None),
    )
    histories = {path: load_history(path) for path in paths}

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories.values():
            yield history

    reports: list[ReplayReport] = []
    async with replayer.workflow_replay_iterator(each()) as results:
        async for result in results:  # one result per history, in order
            path = paths[len(reports)]
            reports.append(_report(path, histories[path], result.replay_failure))
    return reports


def _report(path: Path, history: WorkflowHistory, failure: Exception | None) -> ReplayReport:
    started = history.events[0].workflow_execution_started_event_attributes
    workflow_type, workflow_id = started.workflow_type.name, history.workflow_id
    match = _EVENT.search(str(failure)) if failure is not None else None
    if match is None:
        return ReplayReport(path, workflow_type, workflow_id, failure)
    event_id = int(match.group(1))
    event = next((e for e in history.events if e.event_id == event_id), None)
    return ReplayReport(
        path,
        workflow_type,
        workflow_id,
        failure,
        event_id=event_id,
        event_type=match.group(2),
        event_detail=event_detail(event) if event is not None else None,
    )


def patch_ids(history: WorkflowHistory) -> set[str]:
    """The `workflow.patched` ids a history recorded (its `core_patch` markers)."""
    ids = set()
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if (
            event.HasField("marker_recorded_event_attributes")
            and marker.marker_name == "core_patch"
        ):
            ids.add(json.loads(marker.details["patch-data"].payloads[0].data)["id"])
    return ids


def activity_types(history: WorkflowHistory) -> set[str]:
    """The names of the activities a history scheduled."""
    return {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }


def event_detail(event: HistoryEvent) -> str | None:
    """What an event is about, in a few words: its activity, timer, marker, signal or child."""
    if event.HasField("activity_task_scheduled_event_attributes"):
        return f"activity {event.activity_task_scheduled_event_attributes.activity_type.name}"
    if event.HasField("timer_started_event_attributes"):
        timeout = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        return f"timer of {timeout.total_seconds():g}s"
    if event.HasField("marker_recorded_event_attributes"):
        return f"marker {event.marker_recorded_event_attributes.marker_name}"
    if event.HasField("workflow_execution_signaled_event_attributes"):
        return f"signal {event.workflow_execution_signaled_event_attributes.signal_name}"
    if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
        attrs = event.start_child_workflow_execution_initiated_event_attributes
        return f"child {attrs.workflow_type.name} {attrs.workflow_id}"
    return None
