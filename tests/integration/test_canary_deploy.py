"""A `CanaryRollout` of a worker build on the dev server, end to end: `opsready rollout start
--deployment` ramps the candidate build of a fresh Worker Deployment (two versioned workers of
the same code, builds V1 and V2), agent runs spread over both builds, the health check
compares their runs by build id (`AgentBuildId` in Temporal visibility), and after
`opsready rollout approve` the candidate is the current build."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.models.local import LocalProvider
from opsready.client import OpsreadyClient
from opsready.deployment import WorkerDeployment
from opsready.settings import Settings
from tests.integration.test_cli import QUESTION, Cli, Done, one_line_error
from workers.app import build_activities, build_worker
from workers.versioning import ensure_current_version
from workflows.contract import Query
from workflows.rollout_types import RolloutState, deploy_rollout_id
from workflows.types import RunStatus

pytestmark = pytest.mark.integration

V1, V2 = "1.0.0+aaaaaaa", "1.1.0+bbbbbbb"
AGENT = "support-triage"
# Enough runs that, at a 50% ramp, both builds almost surely get MIN_SAMPLES of them
# (fewer than 6 of 32 on one side: p ~ 1e-4). The soak outlasts the runs (~2 s each), so
# the check judges whole samples: medians of a few runs in flight would make the latency
# gate (both builds are the same code) a coin toss.
RUNS, MIN_SAMPLES, SOAK = 32, 6, "5s"


@dataclass
class Fleet:
    env: WorkflowEnvironment
    settings: Settings
    client: OpsreadyClient
    deployment: WorkerDeployment
    cli: Cli

    async def rollout(self, *args: str) -> Done:
        return await self.cli("rollout", *args)

    async def state(self, handle: WorkflowHandle[None, RolloutState]) -> RolloutState:
        state: RolloutState = await handle.query(Query.STATE, result_type=RolloutState)
        return state

    async def wait_for(
        self,
        handle: WorkflowHandle[None, RolloutState],
        predicate: Callable[[RolloutState], bool],
        timeout: float = 20.0,
    ) -> RolloutState:
        """Poll the `state` query until `predicate` holds (a condition, not a sleep)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await self.state(handle)
            if predicate(state):
                return state
            if loop.time() > deadline:
                raise AssertionError(f"condition not met; last state: {state}")
            await asyncio.sleep(0.1)


@pytest.fixture
async def fleet(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Fleet]:
    """Workers of V1 (current: it polled first) and V2 on a fresh deployment and task queue.
    The health check reads both builds' runs from visibility, whichever worker runs it."""
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        task_queue=f"canary-deploy-{suffix}",
        data_dir=tmp_path / "data",
        deployment_name=f"opsready-canary-{suffix}",
        worker_versioning=True,
    )
    address = dev_env.client.service_client.config.target_host
    client = OpsreadyClient(dev_env.client, settings)
    deployment = WorkerDeployment(dev_env.client, settings.deployment_name)
    async with AsyncExitStack() as workers:
        for build in (V1, V2):
            versioned = settings.model_copy(update={"build_id": build})
            activities = build_activities(versioned, providers={"local": LocalProvider()})
            worker = build_worker(
                dev_env.client, versioned, activities=activities, identity=f"worker-{build}"
            )
            await workers.enter_async_context(worker)
            await ensure_current_version(dev_env.client, versioned)
        await deployment.wait_for_version(V2)
        yield Fleet(dev_env, settings, client, deployment, Cli(address, settings, client))


async def test_deployment_rollout_ramps_checks_builds_and_makes_the_candidate_current(
    fleet: Fleet,
) -> None:
    name = fleet.settings.deployment_name
    mistakes = await asyncio.gather(
        fleet.rollout(
            "start", "--deployment", name, "--candidate-build", "nope", "--approver", "a"
        ),
        fleet.rollout("start", "--deployment", name, "--candidate-build", V1, "--approver", "a"),
    )
    one_line_error(mistakes[0], "unknown build id 'nope'")
    one_line_error(mistakes[1], f"{V1} is already the current build of {name}")

    started = await fleet.rollout(
        "start",
        "--deployment",
        name,
        "--candidate-build",
        V2,
        "--agent",
        AGENT,
        "--stages",
        "50,100",
        "--soak",
        SOAK,
        "--max-soaks",
        "6",
        "--min-samples",
        str(MIN_SAMPLES),
        "--approver",
        "alice",
    )
    assert started.code == 0, started.err
    rollout_id = deploy_rollout_id(name)
    assert started.out.splitlines()[0] == rollout_id
    handle = fleet.env.client.get_workflow_handle(rollout_id, result_type=RolloutState)

    await fleet.wait_for(handle, lambda s: s.status == "soaking" and s.percent == 50)
    routing = (await fleet.deployment.status(count_runs=False)).routing
    assert (routing.current, routing.ramping, routing.ramp_percentage) == (V1, V2, 50.0)

    run_ids = await asyncio.gather(
        *(fleet.client.start_run(AGENT, QUESTION, user_id="customer-17") for _ in range(RUNS))
    )
    results = await asyncio.gather(*(fleet.client.result(run_id) for run_id in run_ids))
    assert {r.status for r in results} == {RunStatus.COMPLETED}
    builds = [r.config.build_id if r.config else None for r in results]
    assert set(builds) == {V1, V2}, builds

    waiting = await fleet.wait_for(handle, lambda s: s.status != "soaking")
    assert waiting.status == "awaiting_approval", waiting.reason
    last = waiting.decisions[-1]
    assert (last.stage_percent, last.decision) == (50, "promote")
    assert min(last.candidate.runs, last.control.runs) >= MIN_SAMPLES
    assert last.candidate.runs + last.control.runs <= RUNS  # only this stage's runs count
    status = await fleet.rollout("status", rollout_id)
    assert f"builds    candidate {V2} vs control {V1}" in status.out, status.out

    approved = await fleet.rollout("approve", rollout_id, "--as", "alice")
    assert approved.code == 0, approved.err
    assert f"approved by alice; {rollout_id} is now promoted" in approved.out
    result = await handle.result()
    assert result.status == "promoted", result.reason
    assert result.deployment is not None and result.deployment.control_build == V1
    routing = (await fleet.deployment.status(count_runs=False)).routing
    assert (routing.current, routing.ramping) == (V2, None)
