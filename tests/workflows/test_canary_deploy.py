"""`CanaryRollout` of a worker build (a Worker Deployment ramp) on the time-skipping server.

That server has no Worker Deployments, so `rollout.set_deployment_ramp` is a recording test
activity under the same name that keeps a simulated routing (current build, ramp); the real
`rollout.compare_cohorts` reads a real outcome store, seeded at each comparison with the
stage's runs of each build (as test_canary.py does for variations). The real ramp activity
runs against the dev server in tests/integration/test_canary_deploy.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.outcomes import OutcomeStore
from activities.rollout import RolloutActivities
from opsready.settings import Settings
from tests.fakes.canary import AGENT, CONTROL, SOAK, Canary, Shape, candidate_runs_per_soak
from tests.workflows.test_canary import assert_replays, verdicts
from workflows.canary_rollout import CanaryRolloutWorkflow
from workflows.contract import ROLLOUT_WORKFLOW, Activity, ErrorType, Update
from workflows.payloads import RunOutcome
from workflows.rollout_types import (
    CohortComparison,
    CompareCohortsInput,
    DeploymentTarget,
    RolloutPlan,
    RolloutRequest,
    RolloutState,
    SetDeploymentRampInput,
    SetDeploymentRampResult,
)
from workflows.types import ApprovalDecision

DEPLOYMENT = "opsready"
OLD, NEW, OTHER = "1.0.0+aaaaaaa", "1.1.0+bbbbbbb", "0.9.0+ccccccc"


@dataclass
class Routing:
    current: str = OLD
    ramping: str | None = None
    ramp_percentage: float = 0.0


@dataclass
class DeployCanary:
    env: WorkflowEnvironment
    task_queue: str
    store: OutcomeStore
    candidate: Shape = field(default_factory=Shape)
    control: Shape = field(default_factory=Shape)
    candidate_traffic: Callable[[float], int] = candidate_runs_per_soak
    routing: Routing = field(default_factory=Routing)
    calls: list[SetDeploymentRampInput] = field(default_factory=list)
    refusal: str | None = None  # the ramp activity refuses every call with this
    written: dict[str, int] = field(default_factory=lambda: {NEW: 0, OLD: 0})

    drive_until = Canary.drive_until  # polls `state`, moving the clock past each soak

    async def start(self, **overrides: Any) -> WorkflowHandle[Any, RolloutState]:
        request = RolloutRequest(
            deployment=DeploymentTarget(deployment=DEPLOYMENT, candidate_build=NEW),
            agent=AGENT,
            requested_by="dana",
            approvers=["alice", "bob"],
            plan=RolloutPlan(soak_seconds=SOAK),
        ).model_copy(update=overrides)
        return await self.env.client.start_workflow(
            ROLLOUT_WORKFLOW,
            request,
            id=f"rollout-deploy-test-{uuid.uuid4().hex[:8]}",
            task_queue=self.task_queue,
            result_type=RolloutState,
        )

    def set_ramp(self, request: SetDeploymentRampInput) -> SetDeploymentRampResult:
        """What the real activity does to a deployment whose current build is OLD."""
        self.calls.append(request)
        if self.refusal is not None:
            raise ApplicationError(self.refusal, type=ErrorType.INVALID_ROLLOUT, non_retryable=True)
        routing, candidate = self.routing, request.candidate_build
        control = request.control_build or (
            routing.current if routing.current != candidate else None
        )
        if request.percent <= 0:
            if routing.current == candidate:
                assert control is not None
                routing.current = control
            if routing.ramping == candidate:
                routing.ramping, routing.ramp_percentage = None, 0.0
        elif request.percent >= 100:
            self.routing = routing = Routing(current=candidate)
        else:
            routing.ramping, routing.ramp_percentage = candidate, request.percent
        return SetDeploymentRampResult(
            deployment=request.deployment,
            candidate_build=candidate,
            control_build=control,
            percent=request.percent,
            current=routing.current,
            ramping=routing.ramping,
            ramp_percentage=routing.ramp_percentage,
        )

    async def seed(self, since: datetime) -> None:
        """One soak's runs of each build at the current ramp, plus runs that must not count:
        another build, shadows, another agent, before the stage. Every run evaluated the flag
        as control, so only the build can tell the cohorts apart."""
        percent = 100.0 if self.routing.current == NEW else self.routing.ramp_percentage
        batch: list[RunOutcome] = []
        for build, shape, runs in (
            (NEW, self.candidate, self.candidate_traffic(percent)),
            (OLD, self.control, 30),
        ):
            for _ in range(runs):
                n = self.written[build]
                self.written[build] += 1
                at = since + timedelta(seconds=1 + n)
                batch.append(shape.outcome(n, CONTROL, at, build_id=build))
        broken = Shape(success_rate=0.0, safety_per_run=1.0, cost_usd=9.0, latency_s=99.0)
        for n in range(20):
            at = since + timedelta(seconds=1 + n)
            batch += [
                broken.outcome(n, CONTROL, at, build_id=OTHER),
                broken.outcome(n, CONTROL, at, build_id=NEW, is_shadow=True),
                broken.outcome(n, CONTROL, at, build_id=NEW, agent="another-agent"),
                broken.outcome(n, CONTROL, since - timedelta(seconds=1 + n), build_id=NEW),
            ]
        for outcome in batch:
            await asyncio.to_thread(self.store._write, outcome)


@pytest.fixture
async def canary(time_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[DeployCanary]:
    settings = Settings(data_dir=tmp_path / "data", task_queue=f"deploy-{uuid.uuid4().hex[:8]}")
    store = OutcomeStore(settings.data_dir / "outcomes.sqlite")
    canary = DeployCanary(time_env, settings.task_queue, store)
    real = RolloutActivities(settings, store)

    @activity.defn(name=Activity.ROLLOUT_SET_DEPLOYMENT_RAMP)
    async def set_deployment_ramp(request: SetDeploymentRampInput) -> SetDeploymentRampResult:
        return canary.set_ramp(request)

    @activity.defn(name=Activity.ROLLOUT_COMPARE_COHORTS)
    async def compare_cohorts(request: CompareCohortsInput) -> CohortComparison:
        await canary.seed(request.candidate.since)
        return await real.compare_cohorts(request)

    async with Worker(
        time_env.client,
        task_queue=settings.task_queue,
        workflows=[CanaryRolloutWorkflow],
        activities=[set_deployment_ramp, compare_cohorts],
    ):
        yield canary


def ramps(canary: DeployCanary) -> list[tuple[float, str | None]]:
    return [(call.percent, call.control_build) for call in canary.calls]


async def test_healthy_build_is_ramped_stage_by_stage_then_made_current_after_approval(
    canary: DeployCanary,
) -> None:
    with canary.env.auto_time_skipping_disabled():
        handle = await canary.start()
        waiting = await canary.drive_until(handle, lambda s: s.status == "awaiting_approval")
        assert waiting.percent == 50 and canary.routing == Routing(OLD, NEW, 50.0)
        assert waiting.approval is not None
        decision = ApprovalDecision(approved=True, approver="alice")
        after = await handle.execute_update(Update.DECIDE, decision, result_type=RolloutState)
        assert after.status == "promoted"
        result = await handle.result()
    # The first ramp learns the control (the current build); every later call names it.
    assert ramps(canary) == [(1, None), (5, OLD), (25, OLD), (50, OLD), (100, OLD)]
    assert canary.routing == Routing(current=NEW)
    assert verdicts(result) == [
        (1, "hold"),
        (1, "promote"),
        (5, "promote"),
        (25, "promote"),
        (50, "promote"),
    ]
    decided = result.decisions[1]
    assert (decided.candidate.runs, decided.control.runs) == (20, 60)
    assert decided.candidate.success_rate == pytest.approx(0.95)
    assert result.deployment == DeploymentTarget(
        deployment=DEPLOYMENT, candidate_build=NEW, control_build=OLD
    )
    assert (result.status, result.percent, result.flag) == ("promoted", 100, None)
    assert result.reason == f"promoted: {NEW} is the current build of {DEPLOYMENT}"
    memo = await (await handle.describe()).memo()
    assert (memo["deployment"], memo["candidate_build"], memo["status"]) == (
        DEPLOYMENT,
        NEW,
        "promoted",
    )
    await assert_replays(handle)


async def test_build_with_worse_success_rate_is_rolled_back_by_ending_its_ramp(
    canary: DeployCanary,
) -> None:
    canary.candidate = Shape(success_rate=0.6)
    result = await (await canary.start()).result()
    assert result.status == "rolled_back"
    assert verdicts(result) == [(1, "hold"), (1, "rollback")]
    assert result.decisions[-1].reasons[0] == (
        "success rate: candidate 60.0% vs control 95.0% (drop 35.0% > 5.0%)"
    )
    assert (result.reason or "").startswith("stage 1%: success rate: candidate 60.0%")
    assert ramps(canary) == [(1, None), (0, OLD)]
    assert canary.routing == Routing(current=OLD)
    assert result.percent == 0


async def test_refused_first_ramp_aborts_without_touching_the_deployment(
    canary: DeployCanary,
) -> None:
    canary.refusal = f"unknown build id {NEW!r} in Worker Deployment {DEPLOYMENT!r}"
    result = await (await canary.start()).result()
    assert result.status == "aborted"
    assert result.reason == f"could not start: {canary.refusal}"
    assert ramps(canary) == [(1, None)]  # no rollback call: nothing was changed
    assert canary.routing == Routing()
