"""A provider's rate limit on the dev server: model calls go to the provider's own task
queue, whose worker Temporal limits to N activities a second. A burst of runs then waits
in Temporal (visible to `opsready status` and in the backlog metric) instead of hitting
the provider faster than N calls a second, measured at the loopback server, and every
run completes."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from opsready.client import OpsreadyClient
from opsready.runs import run_result
from opsready.settings import Settings
from opsready.telemetry import Telemetry
from tests.conftest import write_agent
from tests.fakes.openai_server import FakeOpenAI
from workers.app import build_activities, build_worker, rate_limited_workers
from workers.queue_depth import QueueDepthMonitor
from workflows.contract import activity_queue
from workflows.types import AgentRunRequest, AgentRunResult, RunStatus

pytestmark = pytest.mark.integration

AGENT = "rate-tester"
AGENT_TOML = f"""
name = "{AGENT}"
version = "1.0.0"
model = "openai/gpt-4o-mini"
prompt_version = "v1"
[prompts.v1]
system = "You are a test agent."
"""
RATE = 4  # calls per second
RUNS = 16


def most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


@pytest.mark.timeout(120)
async def test_a_burst_never_calls_the_provider_faster_than_its_rate_limit(
    dev_env: WorkflowEnvironment, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    client = dev_env.client
    agents_dir = tmp_path / "agents"
    write_agent(agents_dir, AGENT, AGENT_TOML)
    settings = Settings(
        agents_dir=agents_dir,
        data_dir=tmp_path / "data",
        task_queue=f"rate-{uuid.uuid4().hex[:8]}",
        worker_versioning=False,
        openai_base_url=fake_openai.base_url,
        openai_api_key="sk-test-rate",  # type: ignore[arg-type]
        rate_limits={"model:openai": RATE},
    )
    activities = build_activities(settings)
    queue = activity_queue(settings.task_queue, "model:openai")
    monitor = QueueDepthMonitor(
        client, Telemetry.create(span_processors=[], metric_readers=[]), [queue]
    )
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(build_worker(client, settings, activities=activities))
        for worker in rate_limited_workers(client, settings, activities):
            await stack.enter_async_context(worker)
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    "AgentRun",
                    AgentRunRequest(agent=AGENT, input=f"question {i}", user_id="u-1"),
                    id=f"rate-{i}-{uuid.uuid4().hex[:6]}",
                    task_queue=settings.task_queue,
                    result_type=AgentRunResult,
                )
                for i in range(RUNS)
            )
        )
        # While the burst drains, the waiting runs say what they wait on.
        runs = OpsreadyClient(client, settings)
        async with asyncio.timeout(20):
            while True:
                waits = [w for h in handles for w in await runs.waits(h.id)]
                if any(w.limited == "model:openai" for w in waits):
                    break
        assert waits[0].task_queue == queue and "rate limit of model:openai" in waits[0].describe()
        await monitor.poll_once()  # the server's count of the queue's backlog, as a gauge
        results = await asyncio.wait_for(asyncio.gather(*(run_result(h) for h in handles)), 60)

    assert [r.status for r in results] == [RunStatus.COMPLETED] * RUNS
    arrivals = [r.at for r in fake_openai.requests]
    assert len(arrivals) == RUNS
    assert most_in_any_second(arrivals) <= RATE, sorted(
        round(a - min(arrivals), 2) for a in arrivals
    )
