"""What a real `AgentRun` writes for SLIs when it ends: a tool that times out on every
attempt is tallied as a timeout (not an error), a tool that answers with an error as an
error, and both tallies and the run's latency are in its search attributes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio.testing import WorkflowEnvironment

from activities.tools.registry import Tool, ToolContext
from opsready.runs import state_of
from opsready.settings import Settings
from tests.conftest import write_agent
from tests.fakes.scripted import ScriptedProvider, answer, calls, tool_messages
from tests.workflows.conftest import harness_tools
from workers.app import build_activities, build_worker
from workflows import contract, visibility
from workflows.payloads import ModelCallInput
from workflows.sli_types import Tally
from workflows.types import AgentRunRequest, AgentRunResult, RiskTier, RunStatus

AGENT = """
name = "slow"
version = "1.0.0"
model = "scripted/test"
prompt_version = "v1"
[prompts.v1]
system = "You are a test agent."
[tools.hang]
timeout_seconds = 0.5
[tools.lookup_order]
"""


class NoArgs(BaseModel):
    pass


async def _hang(args: NoArgs, ctx: ToolContext) -> dict[str, str]:
    await asyncio.Event().wait()
    return {}


HANG = Tool(
    name="hang", description="Never answers.", args=NoArgs, risk_tier=RiskTier.READ, fn=_hang
)


def script(request: ModelCallInput) -> Any:
    if not tool_messages(request):
        return calls(1, ("hang", {}), ("lookup_order", {"order_id": "A-9999"}))
    return answer("gave up")


async def test_a_tool_that_times_out_is_tallied_as_a_timeout_not_an_error(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    write_agent(tmp_path / "agents", "slow", AGENT)
    settings = Settings(
        agents_dir=tmp_path / "agents",
        data_dir=tmp_path / "data",
        task_queue=f"sli-{uuid.uuid4().hex[:8]}",
        worker_versioning=False,
    )
    text = "hang please"
    scripted = ScriptedProvider({text: script})
    tools = [HANG, *harness_tools()]
    activities = build_activities(settings, providers={"scripted": scripted}, tools=tools)
    async with build_worker(time_env.client, settings, activities=activities):
        handle = await time_env.client.start_workflow(
            contract.AGENT_RUN_WORKFLOW,
            AgentRunRequest(agent="slow", input=text),
            id=f"slow-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
            result_type=AgentRunResult,
        )
        result = await handle.result()
        described = await handle.describe()

    assert result.status is RunStatus.COMPLETED
    hang, lookup = result.tool_calls
    assert hang.decision == "failed" and visibility.is_timeout(hang), hang.error
    assert lookup.decision == "executed" and not lookup.ok
    marks = described.typed_search_attributes.get(contract.AGENT_TALLIES) or []
    assert {"tool_calls>=2", "tool_timeouts>=1", "tool_errors>=1"} <= set(marks)
    assert "tool_timeouts>=2" not in marks and "tool_errors>=2" not in marks
    assert described.typed_search_attributes.get(contract.AGENT_LATENCY_SECONDS) is not None
    assert visibility.tallies(state_of("slow", result))[Tally.TOOL_TIMEOUTS] == 1
