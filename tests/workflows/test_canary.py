"""`CanaryRollout` on the time-skipping server, with a real flag file and outcome store
(the rig and its simulated traffic: tests/fakes/canary.py).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.outcomes import OutcomeStore
from activities.rollout import RolloutActivities
from opsready.flags import LocalFlagFile
from opsready.settings import PROJECT_ROOT, Settings
from tests.fakes.canary import (
    AGENT,
    CANDIDATE,
    CONTROL,
    FLAG,
    SOAK,
    Canary,
    Shape,
    canary_rig,
    split,
)
from workflows.canary_rollout import CanaryRolloutWorkflow
from workflows.contract import ErrorType, Signal, Update
from workflows.rollout_types import (
    AbortRequest,
    Cohort,
    RolloutPlan,
    RolloutState,
    SetRolloutInput,
)
from workflows.types import ApprovalDecision


@pytest.fixture
async def canary(time_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Canary]:
    async with canary_rig(time_env, tmp_path) as rig:
        yield rig


async def assert_replays(handle: WorkflowHandle[Any, RolloutState]) -> None:
    """The recorded history replays on the current code (the workflow is deterministic)."""
    replayer = Replayer(workflows=[CanaryRolloutWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(await handle.fetch_history())


def verdicts(state: RolloutState) -> list[tuple[float, str]]:
    return [(d.stage_percent, d.decision) for d in state.decisions]


async def test_healthy_candidate_is_promoted_stage_by_stage_after_approval(
    canary: Canary,
) -> None:
    with canary.env.auto_time_skipping_disabled():
        handle = await canary.start()
        waiting = await canary.drive_until(handle, lambda s: s.status == "awaiting_approval")
        assert waiting.approval is not None and waiting.approval.outcome == "pending"
        assert waiting.percent == 50 and await canary.serving() == split(50)
        after = await handle.execute_update(
            Update.DECIDE,
            ApprovalDecision(
                request_id=waiting.approval.request_id, approved=True, approver="alice"
            ),
            result_type=RolloutState,
        )
        assert after.status == "promoted"
        result = await handle.result()
    assert canary.served == [split(p) for p in (1, 5, 25, 50, 100)]
    assert await canary.serving() == {CANDIDATE: 100.0}
    assert verdicts(result) == [
        (1, "hold"),
        (1, "promote"),
        (5, "promote"),
        (25, "promote"),
        (50, "promote"),
    ]
    first, decided = result.decisions[0], result.decisions[1]
    assert first.reasons == [
        "waiting for traffic: candidate 10 runs, control 30 runs (need 20 each)"
    ]
    assert (decided.candidate.runs, decided.control.runs, decided.soak) == (20, 60, 2)
    assert decided.candidate.success_rate == pytest.approx(0.95)
    assert (result.status, result.percent, result.control_variation) == ("promoted", 100, 0)
    assert result.approval is not None
    assert (result.approval.outcome, result.approval.approver) == ("approved", "alice")
    await assert_replays(handle)


async def test_worse_success_rate_rolls_back_at_first_stage_with_enough_runs(
    canary: Canary,
) -> None:
    canary.candidate = Shape(success_rate=0.6)
    result = await (await canary.start()).result()
    assert result.status == "rolled_back"
    assert verdicts(result) == [(1, "hold"), (1, "rollback")]
    # Failed runs also make each success dearer, so the cost gate fails with it.
    assert result.decisions[-1].reasons == [
        "success rate: candidate 60.0% vs control 95.0% (drop 35.0% > 5.0%)",
        "cost per successful run: candidate $0.0167 vs control $0.0105 (ratio 1.58 > 1.50)",
    ]
    assert (result.reason or "").startswith("stage 1%: success rate: candidate 60.0%")
    assert canary.served == [split(1), split(0)]
    assert await canary.serving() == {CONTROL: 100.0}
    assert result.percent == 0


async def test_more_safety_events_roll_back(canary: Canary) -> None:
    canary.candidate = Shape(safety_per_run=0.25)
    canary.candidate_traffic = lambda percent: 40  # enough runs at once
    result = await (await canary.start()).result()
    assert result.status == "rolled_back"
    assert verdicts(result) == [(1, "rollback")]
    [reason] = result.decisions[0].reasons
    assert reason == (
        "safety events per run: candidate 0.250 vs control 0.000 (increase 0.250 > 0.050)"
    )
    assert canary.served == [split(1), split(0)]
    assert await canary.serving() == {CONTROL: 100.0}


async def test_abort_while_soaking_rolls_back_at_once(canary: Canary) -> None:
    with canary.env.auto_time_skipping_disabled():
        handle = await canary.start()
        soaking = await canary.drive_until(
            handle, lambda s: s.stage_index == 1 and s.next_check_at is not None
        )
        assert soaking.status == "soaking" and soaking.percent == 5
        with pytest.raises(WorkflowUpdateFailedError) as early:
            decision = ApprovalDecision(approved=True, approver="alice")
            await handle.execute_update(Update.DECIDE, decision, result_type=RolloutState)
        assert "not waiting for an approval (soaking)" in str(early.value.cause)
        await handle.signal(Signal.ABORT, AbortRequest(reason="error budget burning", by="oncall"))
        result = await handle.result()
    assert result.status == "aborted"
    assert result.reason == "aborted by oncall: error budget burning"
    assert verdicts(result) == [(1, "hold"), (1, "promote")]  # no check at 5%
    assert canary.served == [split(1), split(5), split(0)]
    assert await canary.serving() == {CONTROL: 100.0}
    assert result.ended_at is not None and result.decisions[-1].decided_at is not None
    # The abort did not wait for the soak's timer.
    assert (result.ended_at - result.decisions[-1].decided_at).total_seconds() < SOAK
    await assert_replays(handle)


async def test_rejected_approval_rolls_back(canary: Canary) -> None:
    canary.candidate_traffic = lambda percent: 40
    with canary.env.auto_time_skipping_disabled():
        handle = await canary.start()
        waiting = await canary.drive_until(handle, lambda s: s.status == "awaiting_approval")
        assert waiting.approval is not None
        refused = [
            (ApprovalDecision(approved=True, approver="mallory"), "mallory may not approve"),
            (
                ApprovalDecision(request_id="stale", approved=True, approver="bob"),
                "unknown or stale approval request stale",
            ),
        ]
        for decision, message in refused:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update(Update.DECIDE, decision, result_type=RolloutState)
            assert message in str(err.value.cause)
        await handle.signal(
            Signal.APPROVAL_DECISION,
            ApprovalDecision(approved=False, approver="bob", comment="support queue spiking"),
        )
        result = await handle.result()
    assert result.status == "rolled_back"
    assert result.reason == "100% rejected by bob: support queue spiking"
    assert result.approval is not None
    assert (result.approval.outcome, result.approval.approver) == ("rejected", "bob")
    assert canary.served == [split(p) for p in (1, 5, 25, 50, 0)]
    assert await canary.serving() == {CONTROL: 100.0}


async def test_unanswered_approval_times_out_and_rolls_back(canary: Canary) -> None:
    canary.candidate_traffic = lambda percent: 40
    result = await (await canary.start(approvers=["alice"])).result()
    assert result.status == "rolled_back"
    assert result.reason == "no approval for 100% within 86400s"
    assert result.approval is not None and result.approval.outcome == "timed_out"
    assert canary.served[-1] == split(0)


async def test_no_candidate_traffic_rolls_back_after_the_last_soak(canary: Canary) -> None:
    canary.candidate_traffic = lambda percent: 0
    plan = RolloutPlan(soak_seconds=SOAK, max_soaks_per_stage=3)
    result = await (await canary.start(plan=plan)).result()
    assert result.status == "rolled_back"
    assert verdicts(result) == [(1, "hold"), (1, "hold"), (1, "rollback")]
    assert result.reason == (
        "stage 1%: not enough traffic after 3 soaks: candidate 0 runs, control 90 runs "
        "(need 20 each)"
    )
    assert await canary.serving() == {CONTROL: 100.0}


async def test_unknown_flag_aborts_without_touching_any_flag(canary: Canary) -> None:
    before = canary.flags.path.read_text()
    result = await (await canary.start(flag="no-such-flag")).result()
    assert result.status == "aborted"
    assert (result.reason or "").startswith("could not start: no flag 'no-such-flag'")
    assert canary.served == [] and canary.flags.path.read_text() == before


# --- the activities on their own ---------------------------------------------------------


async def test_cohorts_select_by_variation_build_and_agent(tmp_path: Path) -> None:
    store = OutcomeStore(tmp_path / "outcomes.sqlite")
    since = datetime.fromisoformat("2030-01-01T00:00:00+00:00")
    shape = Shape(success_rate=1.0, cost_usd=0.02, latency_s=3.0)
    rows = [
        shape.outcome(0, CANDIDATE, since + timedelta(seconds=5), build_id="b2"),
        shape.outcome(1, CONTROL, since + timedelta(seconds=6), build_id="b1"),
        shape.outcome(2, CONTROL, since + timedelta(seconds=7), build_id="b1", agent="other"),
        shape.outcome(3, CANDIDATE, since - timedelta(seconds=1), build_id="b2"),
        shape.outcome(4, CANDIDATE, since + timedelta(seconds=8), build_id="b2", is_shadow=True),
    ]
    for row in rows:
        store._write(row)

    def runs(**selector: Any) -> int:
        return store.stats(Cohort(since=since, **selector)).runs

    assert runs(flag=FLAG, variation=CANDIDATE) == 1
    assert runs(flag=FLAG, exclude_variation=CANDIDATE) == 2
    assert runs(flag=FLAG, exclude_variation=CANDIDATE, agent=AGENT) == 1
    assert runs(build_id="b2") == 1
    assert runs(exclude_build_id="b2") == 2
    assert runs(flag="another-flag") == 0
    stats = store.stats(Cohort(since=since, build_id="b1"))
    assert (stats.success_rate, stats.cost_per_success_usd, stats.median_latency_s) == (
        1.0,
        0.02,
        3.0,
    )


async def test_set_percent_refuses_what_the_flag_cannot_take(tmp_path: Path) -> None:
    flags_file = tmp_path / "flags.json"
    shutil.copy(PROJECT_ROOT / "temporal-dev" / "flags.json", flags_file)
    settings = Settings(data_dir=tmp_path / "data", flags_file=flags_file)
    rollout = RolloutActivities(settings, OutcomeStore(tmp_path / "outcomes.sqlite"))
    flags = LocalFlagFile(flags_file)

    async def refusal(**request: Any) -> str:
        with pytest.raises(ApplicationError) as err:
            await rollout.set_percent(SetRolloutInput(flag=FLAG, **request))
        assert err.value.type == ErrorType.INVALID_ROLLOUT and err.value.non_retryable
        return err.value.message

    assert "has no variation 5" in await refusal(candidate_variation=5, percent=1)
    # A retry after a lost reply sees its own split and finds the same control.
    first = await rollout.set_percent(SetRolloutInput(flag=FLAG, candidate_variation=1, percent=5))
    again = await rollout.set_percent(SetRolloutInput(flag=FLAG, candidate_variation=1, percent=5))
    assert (first.control_variation, again.control_variation, again.rollout) == (
        0,
        0,
        {0: 95.0, 1: 5.0},
    )
    await flags.set_value(FLAG, "candidate")
    assert "cannot tell the control variation" in await refusal(candidate_variation=1, percent=1)
    await asyncio.to_thread(_turn_off, flags_file)
    assert "is off" in await refusal(candidate_variation=1, control_variation=0, percent=1)
    # Rolling back an off flag leaves it off.
    back = await rollout.set_percent(
        SetRolloutInput(flag=FLAG, candidate_variation=1, control_variation=0, percent=0)
    )
    assert back.percent == 0 and not (await flags.get_flag(FLAG)).on


def _turn_off(flags_file: Path) -> None:
    document = json.loads(flags_file.read_text())
    document["flags"][FLAG]["on"] = False
    flags_file.write_text(json.dumps(document))
