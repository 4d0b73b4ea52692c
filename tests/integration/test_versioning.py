"""Worker Deployment Versioning on the dev server: two builds of the same worker side by
side (one deployment and task queue per test). A ramp sends its share of new runs to the new
build, a run pinned to the old build finishes there after the new one is promoted, and
`opsready deploy rollback` sends new runs back; every mistake is one line."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.common import VersioningBehavior
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.models.local import LocalProvider
from opsready.agents import load_agent
from opsready.client import OpsreadyClient
from opsready.deployment import RoutingChange, WorkerDeployment
from opsready.flags import working_flag_file
from opsready.settings import PROJECT_ROOT, Settings
from tests.integration.test_cli import (
    BIG_REFUND,
    QUESTION,
    Cli,
    Done,
    _exec,
    eventually,
    one_line_error,
)
from workers.app import build_activities, build_worker
from workers.versioning import (
    build_id,
    deployment_config,
    ensure_current_version,
    source_build_id,
)
from workflows.types import RunStatus

pytestmark = pytest.mark.integration

V1, V2, V3 = "1.0.0+aaaaaaa", "1.1.0+bbbbbbb", "1.2.0+ccccccc"
RAMP_RUNS, RAMP_SHARE = 60, 0.30


@dataclass
class Fleet:
    env: WorkflowEnvironment
    settings: Settings  # versioned, without a build id: each worker gets its own
    root: Path
    client: OpsreadyClient
    deployment: WorkerDeployment
    cli: Cli
    first_deploy: list[RoutingChange] = field(default_factory=list)

    def worker(self, build: str) -> AbstractAsyncContextManager[Worker]:
        """A worker of the same code as the others, announcing `build`."""
        settings = self.settings.model_copy(
            update={"build_id": build, "data_dir": self.root / build}
        )
        activities = build_activities(settings, providers={"local": LocalProvider()})
        return build_worker(
            self.env.client, settings, activities=activities, identity=f"worker-{build}"
        )

    def settings_of(self, build: str) -> Settings:
        return self.settings.model_copy(update={"build_id": build})

    async def deploy(self, *args: str) -> Done:
        return await self.cli("deploy", *args, "--deployment", self.deployment.name)

    async def start(self, text: str = QUESTION, n: int = 1) -> list[str]:
        starts = (
            self.client.start_run("support-triage", text, user_id="customer-17") for _ in range(n)
        )
        return list(await asyncio.gather(*starts))

    async def build_of(self, run_id: str) -> str:
        """The build a run is pinned to: set once a worker of it completed a workflow task."""

        async def pinned() -> str | None:
            description = await self.env.client.get_workflow_handle(run_id).describe()
            info = description.raw_description.workflow_execution_info.versioning_info
            return info.deployment_version.build_id or None

        return await eventually(pinned)


@pytest.fixture
async def fleet(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Fleet]:
    """Workers of builds V1 and V2 on a fresh deployment; V1 started first, so it is current."""
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        task_queue=f"versioned-{suffix}",
        data_dir=tmp_path / "starter",
        deployment_name=f"opsready-test-{suffix}",
        worker_versioning=True,
    )
    # One flag file for every build, as one LaunchDarkly project would be: the workers'
    # settings keep this path (model_copy does not re-derive it from their data dirs), and
    # a missing file leaves the kill switches unknown, so every new run would be refused.
    working_flag_file(settings)
    address = dev_env.client.service_client.config.target_host
    client = OpsreadyClient(dev_env.client, settings)
    deployment = WorkerDeployment(dev_env.client, settings.deployment_name)
    fleet = Fleet(dev_env, settings, tmp_path, client, deployment, Cli(address, settings, client))
    async with AsyncExitStack() as workers:
        for build in (V1, V2):
            await workers.enter_async_context(fleet.worker(build))
            change = await ensure_current_version(dev_env.client, fleet.settings_of(build))
            assert change is not None
            fleet.first_deploy.append(change)
        yield fleet


async def test_first_worker_makes_its_version_current_and_later_ones_leave_it(
    fleet: Fleet,
) -> None:
    first, second = fleet.first_deploy
    assert (first.before.current, first.after.current) == (None, V1)
    assert not second.is_changed and second.after.current == V1
    status = await fleet.deployment.status()
    assert {v.build_id: v.status for v in status.versions} == {V1: "current", V2: "inactive"}
    assert (status.current, status.ramping, status.previous) == (V1, None, None)


async def test_ramp_sends_about_its_share_of_new_runs_to_the_ramping_build(fleet: Fleet) -> None:
    ramped = await fleet.deploy("ramp", V2, "30")
    assert ramped.code == 0, ramped.err
    assert f"{V2} (30%, ramping)" in ramped.out
    status = await fleet.deployment.status(count_runs=False)
    assert (status.current, status.ramping, status.ramp_percentage) == (V1, V2, 30.0)

    run_ids = await fleet.start(n=RAMP_RUNS)
    results = await asyncio.gather(*(fleet.client.result(run_id) for run_id in run_ids))
    assert {r.status for r in results} == {RunStatus.COMPLETED}
    builds = await asyncio.gather(*(fleet.build_of(run_id) for run_id in run_ids))
    on_v2 = builds.count(V2)
    assert builds.count(V1) + on_v2 == RAMP_RUNS
    expected = RAMP_RUNS * RAMP_SHARE
    sigma = math.sqrt(RAMP_RUNS * RAMP_SHARE * (1 - RAMP_SHARE))
    print(f"\nramp 30%: {on_v2}/{RAMP_RUNS} new runs on {V2} ({on_v2 / RAMP_RUNS:.0%})")
    assert abs(on_v2 - expected) <= 4 * sigma, f"{on_v2}/{RAMP_RUNS} on the ramping build"

    # Nothing was current before V1: rolling back removes the ramp and keeps V1.
    rolled = await fleet.deploy("rollback", "--json")
    assert rolled.code == 0, rolled.err
    assert rolled.json()["after"] == {"current": V1, "ramping": None, "ramp_percentage": 0.0}


async def test_pinned_run_finishes_on_its_build_after_another_becomes_current(
    fleet: Fleet,
) -> None:
    [parked] = await fleet.start(BIG_REFUND)
    await fleet.cli.wait_for_status(parked, RunStatus.AWAITING_APPROVAL)
    assert await fleet.build_of(parked) == V1

    promoted = await fleet.deploy("set-current", V2)
    assert promoted.code == 0, promoted.err
    assert f"new runs go to {V2}" in promoted.out and f"before: {V1}" in promoted.out
    [fresh] = await fleet.start()
    assert await fleet.build_of(fresh) == V2

    async def v1_serves_the_parked_run() -> bool | None:
        v1 = (await fleet.deployment.status()).version(V1)
        return True if v1 and v1.open_pinned_runs == 1 and v1.status == "draining" else None

    await eventually(v1_serves_the_parked_run)
    text = await fleet.deploy("status")
    assert text.code == 0 and f"rollback  {V1}" in text.out, text.out

    await fleet.client.approve(parked, "alice", comment="damaged")
    result = await fleet.client.result(parked)
    assert result.status is RunStatus.COMPLETED
    assert await fleet.build_of(parked) == V1
    history = await fleet.env.client.get_workflow_handle(parked).fetch_history()
    task_builds = {
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in history.events
        if e.HasField("workflow_task_completed_event_attributes")
    }
    activity_workers = {
        e.activity_task_started_event_attributes.identity
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    }
    assert task_builds == {V1}
    assert activity_workers == {f"worker-{V1}"}  # the refund too, after the promotion
    # The run says which code, definition and prompt produced it: result, memo, status.
    assert result.config is not None and result.config.build_id == V1
    version = load_agent(PROJECT_ROOT / "agents", "support-triage")[0].version
    assert (result.config.agent_version, result.config.prompt_version) == (version, "v1")
    memo = await (await fleet.env.client.get_workflow_handle(parked).describe()).memo()
    assert (memo["build_id"], memo["agent_version"]) == (V1, version)
    assert memo["config_hash"] == result.config.config_hash
    shown = await fleet.cli("status", parked)
    assert f"build     {V1}" in shown.out and f"version {version}, prompt v1" in shown.out
    assert (await fleet.client.result(fresh)).status is RunStatus.COMPLETED


async def test_rollback_sends_new_runs_back_to_the_previous_build_and_ends_the_ramp(
    fleet: Fleet,
) -> None:
    async with fleet.worker(V3):
        await fleet.deployment.wait_for_version(V3)
        await fleet.deployment.set_current(V2)
        await fleet.deployment.ramp(V3, 50)

        rolled = await fleet.deploy("rollback", "--json")
        assert rolled.code == 0, rolled.err
        change = rolled.json()
        assert change["before"] == {"current": V2, "ramping": V3, "ramp_percentage": 50.0}
        assert change["after"] == {"current": V1, "ramping": None, "ramp_percentage": 0.0}
        run_ids = await fleet.start(n=12)
        assert {await fleet.build_of(run_id) for run_id in run_ids} == {V1}
        status = await fleet.deployment.status(count_runs=False)
        assert (status.current, status.previous) == (V1, V2)
        results = await asyncio.gather(*(fleet.client.result(run_id) for run_id in run_ids))
        assert {r.status for r in results} == {RunStatus.COMPLETED}


async def test_every_deploy_mistake_is_one_line_with_a_non_zero_exit(fleet: Fleet) -> None:
    unreachable = [sys.executable, "-m", "starters.cli", "--address", "127.0.0.1:1"]
    unreachable += ["deploy", "status"]
    done = await asyncio.gather(
        fleet.deploy("set-current", "nope"),
        fleet.deploy("ramp", V2, "150"),
        fleet.deploy("ramp", V2, "lots"),
        fleet.deploy("ramp", V1, "30"),
        fleet.deploy("ramp", "nope", "30"),
        fleet.deploy("rollback"),
        fleet.cli("deploy", "status", "--deployment", "no-such-deployment"),
        _exec(unreachable, {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}),
    )
    one_line_error(done[0], "unknown build id 'nope'")
    one_line_error(done[1], "above 0 and below 100")
    one_line_error(done[2], "PERCENT must be a number")
    one_line_error(done[3], "already current")
    one_line_error(done[4], "unknown build id 'nope'")
    one_line_error(done[5], f"was current before {V1}")
    one_line_error(done[6], "no Worker Deployment 'no-such-deployment'")
    one_line_error(done[7], "cannot reach Temporal at 127.0.0.1:1")
    assert [d.code for d in done] == [3, 2, 2, 2, 3, 2, 3, 4]

    # A ramp of 0 removes the ramp, as --stop does.
    await fleet.deployment.ramp(V2, 10)
    stopped = await fleet.deploy("ramp", V2, "0", "--json")
    assert stopped.code == 0, stopped.err
    assert stopped.json()["after"]["ramping"] is None
    again = await fleet.deploy("ramp", "--stop")
    assert again.code == 0 and "unchanged" in again.out


def test_build_id_is_the_setting_else_version_plus_commit(tmp_path: Path) -> None:
    assert build_id(Settings(build_id="2.0.0-rc1")) == "2.0.0-rc1"
    assert source_build_id(tmp_path) == source_build_id(tmp_path / "nowhere")  # no checkout
    assert "+" not in source_build_id(tmp_path)

    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        return subprocess.run(
            command, cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-qm", "one")
    commit = git("rev-parse", "--short", "HEAD")
    assert source_build_id(tmp_path) == f"{source_build_id(tmp_path / 'nowhere')}+{commit}"
    (tmp_path / "code.py").write_text("x = 2\n")
    assert source_build_id(tmp_path).endswith(f"+{commit}-dirty")


def test_deployment_config_leaves_the_behavior_to_each_workflow() -> None:
    assert deployment_config(Settings(worker_versioning=False)) is None
    config = deployment_config(Settings(deployment_name="ops", build_id="b7"))
    assert config is not None and config.use_worker_versioning
    assert (config.version.deployment_name, config.version.build_id) == ("ops", "b7")
    assert config.default_versioning_behavior is VersioningBehavior.UNSPECIFIED
