"""Circuit breakers on the dev server, against a real chat-completions server on loopback:
a failing provider opens its breaker, runs fall back to the next model of their chain, a
second worker process fails fast on the state the first one recorded, and the breaker
closes again once a probe finds the provider recovered."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from opsready.runs import run_result
from opsready.settings import PROJECT_ROOT, Settings
from tests.conftest import write_agent
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.worker_process import worker_process
from workers.app import build_activities, build_worker
from workflows.breaker_types import BreakerConfig, BreakerStatus, BreakerView
from workflows.contract import Query, breaker_id
from workflows.types import AgentRunRequest, AgentRunResult, RunStatus

pytestmark = pytest.mark.integration

AGENT = "breaker-tester"
PRIMARY, FALLBACK = "openai/gpt-4o-mini", "local/support-triage"
AGENT_TOML = f"""
name = "{AGENT}"
version = "1.0.0"
model = "{PRIMARY}"
fallback_models = ["{FALLBACK}"]
prompt_version = "v1"
[prompts.v1]
system = "You are a support agent."
[tools.search_kb]
[tools.lookup_order]
"""
QUESTION = "Where is my order A-1003? It was due days ago and it is late."
CONFIG = BreakerConfig(window_s=60, failure_rate=0.5, min_calls=3, open_s=12, half_open_probes=1)


async def run(client: Client, task_queue: str) -> AgentRunResult:
    handle = await client.start_workflow(
        "AgentRun",
        AgentRunRequest(agent=AGENT, input=QUESTION, user_id="customer-17"),
        id=f"breaker-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
        result_type=AgentRunResult,
    )
    return await asyncio.wait_for(run_result(handle), 60)


async def breaker(client: Client, task_queue: str) -> BreakerView:
    handle = client.get_workflow_handle(breaker_id(task_queue, "model:openai"))
    view: BreakerView = await handle.query(Query.STATE, result_type=BreakerView)
    return view


def fell_back(result: AgentRunResult) -> bool:
    return result.status is RunStatus.COMPLETED and any(
        f.from_model == PRIMARY and f.to_model == FALLBACK for f in result.fallbacks
    )


@pytest.mark.timeout(150)
async def test_breaker_opens_runs_fall_back_other_workers_fail_fast_and_it_closes_again(
    dev_env: WorkflowEnvironment, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    client = dev_env.client
    agents_dir = tmp_path / "agents"
    write_agent(agents_dir, AGENT, AGENT_TOML)
    (agents_dir / "data").symlink_to(PROJECT_ROOT / "agents" / "data")
    settings = Settings(
        agents_dir=agents_dir,
        data_dir=tmp_path / "data",
        task_queue=f"breaker-{uuid.uuid4().hex[:8]}",
        worker_versioning=False,
        openai_base_url=fake_openai.base_url,
        openai_api_key="sk-test-breaker",  # type: ignore[arg-type]
        model_timeout_seconds=5,
        breakers=True,
        breaker_config=CONFIG,
    )
    env: dict[str, Any] = {
        "OPSREADY_TASK_QUEUE": settings.task_queue,
        "OPSREADY_AGENTS_DIR": str(agents_dir),
        "OPSREADY_DATA_DIR": str(tmp_path / "first-worker"),
        "OPSREADY_OPENAI_BASE_URL": fake_openai.base_url,
        "OPSREADY_OPENAI_API_KEY": "sk-test-breaker",
        "OPSREADY_MODEL_TIMEOUT_SECONDS": "5",
        "OPSREADY_BREAKERS": "true",
        "OPSREADY_BREAKER_CONFIG": CONFIG.model_dump_json(),
    }
    for _ in range(12):
        fake_openai.fail(500)
    address = client.service_client.config.target_host

    # One worker process: the provider fails, the breaker opens, the runs fall back.
    async with worker_process(address, env) as first:
        results = await asyncio.gather(*(run(client, settings.task_queue) for _ in range(3)))
        assert all(fell_back(r) for r in results), [r.reason for r in results]
        assert any(
            "circuit breaker model:openai is open" in f.reason for r in results for f in r.fallbacks
        )
        opened = await breaker(client, settings.task_queue)
        assert opened.state.status is BreakerStatus.OPEN
        first.send_signal(signal.SIGTERM)
        await first.wait()

    # Another worker process, which never saw a failure: it fails fast on the shared state.
    seen = len(fake_openai.requests)
    async with build_worker(client, settings, activities=build_activities(settings)):
        result = await run(client, settings.task_queue)
        assert fell_back(result) and "is open" in result.fallbacks[0].reason
        assert len(fake_openai.requests) == seen  # the provider was not called at all

        # The provider recovers; after the open period a probe finds it well: closed.
        fake_openai.clear()
        async with asyncio.timeout(60):
            while True:  # runs fall back (fast) until the open period is over
                result = await run(client, settings.task_queue)
                if not result.fallbacks:
                    break
                await asyncio.sleep(0.5)
            while True:
                view = await breaker(client, settings.task_queue)
                if view.state.status is BreakerStatus.CLOSED:
                    break
                await asyncio.sleep(0.1)
        assert result.status is RunStatus.COMPLETED and len(fake_openai.requests) > seen
