"""Model failures end to end on the Temporal dev server: a real worker calls the
OpenAI-compatible provider against the fake HTTP server, and Temporal's RetryPolicy (not
the provider) retries rate limits and server errors and stops on a rejected request."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.models.openai_compat import OpenAICompatProvider
from opsready.runs import run_result
from opsready.settings import Settings
from tests.conftest import WorkerFactory, write_agent
from tests.fakes.openai_server import FakeOpenAI
from workflows.types import AgentRunRequest, AgentRunResult, RunStatus, StopReason

pytestmark = pytest.mark.integration

KEY = "sk-test-integration-8d2e61"
AGENT = "openai-tester"
# A model already priced in agents/pricing.toml, which write_agent copies.
AGENT_TOML = f"""
name = "{AGENT}"
version = "1.0.0"
model = "openai/gpt-4o-mini"
prompt_version = "v1"

[prompts.v1]
system = "You are a test agent."
"""


@pytest.fixture
async def worker_settings(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    tmp_path: Path,
    fake_openai: FakeOpenAI,
    run_worker: WorkerFactory,
) -> AsyncIterator[Settings]:
    """A worker whose only provider is the real OpenAI-compatible one, aimed at the fake."""
    agents_dir = tmp_path / "agents"
    write_agent(agents_dir, AGENT, AGENT_TOML)
    settings = settings.model_copy(update={"agents_dir": agents_dir, "model_timeout_seconds": 5})
    provider = OpenAICompatProvider(fake_openai.base_url, api_key=KEY, timeout_seconds=5)
    try:
        async with run_worker(dev_env.client, settings, providers={"openai": provider}, tools=[]):
            yield settings
    finally:
        await provider.aclose()


async def run_agent(env: WorkflowEnvironment, settings: Settings) -> AgentRunResult:
    handle = await env.client.start_workflow(
        "AgentRun",
        AgentRunRequest(agent=AGENT, input="Where is my order?", user_id="customer-1"),
        id=f"it-openai-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        result_type=AgentRunResult,
    )
    return await asyncio.wait_for(run_result(handle), timeout=60)


async def test_rate_limit_is_retried_after_the_servers_retry_after(
    dev_env: WorkflowEnvironment, worker_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    # 2 s, not 1 s: the policy's own first backoff is 1 s, so only a gap of about 2 s
    # shows that Retry-After (as next_retry_delay) decided it.
    fake_openai.fail(429, headers={"Retry-After": "2"})
    fake_openai.reply("Your order A-1001 has shipped.")

    result = await run_agent(dev_env, worker_settings)

    assert result.status is RunStatus.COMPLETED
    assert result.output == "Your order A-1001 has shipped."
    first, second = fake_openai.requests
    assert second.at - first.at >= 1.9
    assert first.body["model"] == "gpt-4o-mini"
    assert first.headers["authorization"] == f"Bearer {KEY}"


async def test_server_errors_are_retried_until_the_model_answers(
    dev_env: WorkflowEnvironment, worker_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail(500)
    fake_openai.fail(500)
    fake_openai.reply("Done.")

    result = await run_agent(dev_env, worker_settings)

    assert result.status is RunStatus.COMPLETED
    assert result.output == "Done."
    assert len(fake_openai.requests) == 3
    assert result.usage.input_tokens == 10 and result.usage.output_tokens == 5


async def test_rejected_request_fails_the_run_at_once_with_the_providers_message(
    dev_env: WorkflowEnvironment, worker_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail(400, body={"error": {"message": "Unsupported parameter: 'max_tokens'"}})

    result = await run_agent(dev_env, worker_settings)

    assert result.status is RunStatus.FAILED
    assert result.stop_reason is StopReason.MODEL_ERROR
    assert len(fake_openai.requests) == 1
    assert "Unsupported parameter: 'max_tokens'" in (result.reason or "")
    assert "HTTP 400" in (result.reason or "")
    assert KEY not in (result.reason or "")
