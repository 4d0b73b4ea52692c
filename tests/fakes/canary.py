"""A flag rollout's world for `CanaryRollout` on the time-skipping server: a real flag file
and outcome store, and simulated traffic.

The worker runs the real rollout activities behind thin wrappers: `rollout.set_percent`
also records what the flag file serves after each write, and `rollout.compare_cohorts` first
writes the stage's simulated traffic into the outcome store, dated inside the stage window
(after the cohorts' `since`), so every comparison sees a known, deterministic sample. Used by
tests/workflows/test_canary.py and the rollout golden histories (tests/replay/).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.outcomes import OutcomeStore
from activities.rollout import RolloutActivities
from opsready.flags import LocalFlagFile
from opsready.settings import PROJECT_ROOT, Settings
from workflows.canary_rollout import CanaryRolloutWorkflow
from workflows.contract import ROLLOUT_WORKFLOW, Activity, Query
from workflows.payloads import RunOutcome
from workflows.rollout_types import (
    CohortComparison,
    CompareCohortsInput,
    RolloutPlan,
    RolloutRequest,
    RolloutState,
    SetRolloutInput,
    SetRolloutResult,
)
from workflows.types import RunStatus, Usage

FLAG = "agent-variant"
AGENT = "support-triage"
CONTROL, CANDIDATE = 0, 1
SOAK = 600.0


@dataclass
class Shape:
    """What one cohort's runs look like; every 20 consecutive runs follow the rates exactly."""

    success_rate: float = 0.95
    safety_per_run: float = 0.0
    cost_usd: float = 0.01
    latency_s: float = 2.0

    def outcome(self, n: int, variation: int, ended_at: datetime, **extra: Any) -> RunOutcome:
        is_success = n % 20 < round(self.success_rate * 20)
        return RunOutcome(
            run_id=f"run-{uuid.uuid4().hex[:12]}",
            agent=extra.pop("agent", AGENT),
            variant="candidate" if variation == CANDIDATE else "control",
            status=RunStatus.COMPLETED if is_success else RunStatus.FAILED,
            stop_reason=None,
            steps=2,
            usage=Usage(cost_usd=self.cost_usd),
            safety_events=1 if n % 20 < round(self.safety_per_run * 20) else 0,
            started_at=ended_at - timedelta(seconds=self.latency_s),
            ended_at=ended_at,
            flag_variations={FLAG: variation},
            **extra,
        )


def candidate_runs_per_soak(percent: float) -> int:
    """Traffic of 1000 runs per soak, split by the rollout (capped to keep tests quick)."""
    return min(40, round(10 * percent))


@dataclass
class Canary:
    env: WorkflowEnvironment
    task_queue: str
    flags: LocalFlagFile
    store: OutcomeStore
    candidate: Shape = field(default_factory=Shape)
    control: Shape = field(default_factory=Shape)
    candidate_traffic: Callable[[float], int] = candidate_runs_per_soak
    served: list[dict[int, float]] = field(default_factory=list)  # the file after each write
    written: dict[int, int] = field(default_factory=lambda: {CANDIDATE: 0, CONTROL: 0})

    async def start(self, **overrides: Any) -> WorkflowHandle[Any, RolloutState]:
        request = RolloutRequest(
            flag=FLAG,
            candidate_variation=CANDIDATE,
            agent=AGENT,
            requested_by="dana",
            approvers=["alice", "bob"],
            plan=RolloutPlan(soak_seconds=SOAK),
        ).model_copy(update=overrides)
        return await self.env.client.start_workflow(
            ROLLOUT_WORKFLOW,
            request,
            id=f"rollout-test-{uuid.uuid4().hex[:8]}",
            task_queue=self.task_queue,
            result_type=RolloutState,
        )

    async def seed(self, since: datetime) -> None:
        """One soak's traffic at the current percentage, plus runs that must not count."""
        percent = self.served[-1].get(CANDIDATE, 0.0)
        batch: list[RunOutcome] = []
        for variation, shape, runs in (
            (CANDIDATE, self.candidate, self.candidate_traffic(percent)),
            (CONTROL, self.control, 30),
        ):
            for _ in range(runs):
                n = self.written[variation]
                self.written[variation] += 1
                batch.append(shape.outcome(n, variation, since + timedelta(seconds=1 + n)))
        broken = Shape(success_rate=0.0, safety_per_run=1.0, cost_usd=9.0, latency_s=99.0)
        for n in range(20):
            at = since + timedelta(seconds=1 + n)
            batch += [
                broken.outcome(n, CANDIDATE, at, is_shadow=True),
                broken.outcome(n, CANDIDATE, at, agent="another-agent"),
                broken.outcome(n, CANDIDATE, since - timedelta(seconds=1 + n)),
            ]
        for outcome in batch:
            await asyncio.to_thread(self.store._write, outcome)

    async def serving(self) -> dict[int, float]:
        info = await self.flags.get_flag(FLAG)
        assert info.fallthrough_variation is not None or info.rollout is not None
        return info.rollout or {info.fallthrough_variation or 0: 100.0}

    async def drive_until(
        self,
        handle: WorkflowHandle[Any, RolloutState],
        predicate: Callable[[RolloutState], bool],
        timeout: float = 30,
    ) -> RolloutState:
        """Poll the `state` query; move the server's clock past each soak as it starts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        skipped: set[tuple[int, int]] = set()
        while True:
            state: RolloutState = await handle.query(Query.STATE, result_type=RolloutState)
            if predicate(state):
                return state
            if loop.time() > deadline:
                raise AssertionError(f"condition not met; last state: {state}")
            soak = (state.stage_index, state.soaks)
            if state.next_check_at is not None and soak not in skipped:
                skipped.add(soak)
                await self.env.sleep(timedelta(seconds=SOAK + 1))
            else:
                await asyncio.sleep(0.05)


@asynccontextmanager
async def canary_rig(env: WorkflowEnvironment, root: Path) -> AsyncIterator[Canary]:
    """A worker running `CanaryRollout` on `env`, with a copy of the flag file and an outcome
    store under `root`; the rollout activities are the real ones behind thin wrappers."""
    flags_file = root / "flags.json"
    shutil.copy(PROJECT_ROOT / "temporal-dev" / "flags.json", flags_file)
    settings = Settings(
        data_dir=root / "data",
        flags_file=flags_file,
        task_queue=f"canary-{uuid.uuid4().hex[:8]}",
    )
    store = OutcomeStore(settings.data_dir / "outcomes.sqlite")
    canary = Canary(env, settings.task_queue, LocalFlagFile(flags_file), store)
    real = RolloutActivities(settings, store)

    @activity.defn(name=Activity.ROLLOUT_SET_PERCENT)
    async def set_percent(request: SetRolloutInput) -> SetRolloutResult:
        result = await real.set_percent(request)
        canary.served.append(await canary.serving())
        return result

    @activity.defn(name=Activity.ROLLOUT_COMPARE_COHORTS)
    async def compare_cohorts(request: CompareCohortsInput) -> CohortComparison:
        await canary.seed(request.candidate.since)
        return await real.compare_cohorts(request)

    async with Worker(
        env.client,
        task_queue=settings.task_queue,
        workflows=[CanaryRolloutWorkflow],
        activities=[set_percent, compare_cohorts],
    ):
        yield canary


def split(candidate: float) -> dict[int, float]:
    if candidate >= 100:
        return {CANDIDATE: 100.0}
    if candidate <= 0:
        return {CONTROL: 100.0}
    return {CONTROL: 100.0 - candidate, CANDIDATE: candidate}
