"""A halt that arrives together with an activity's result still stops the run at once:
no further model call, no further tool call, no approval wait. On the dev server: the
time-skipping server refuses the cancellation of an activity that has just completed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities.models.local import LocalProvider
from activities.tools.registry import Tool, ToolContext
from activities.tools.support import support_tools
from opsready.runs import run_result
from opsready.settings import PROJECT_ROOT, Settings
from tests.conftest import write_agent
from tests.fakes.scripted import ScriptedProvider, answer, calls
from tests.workflows.conftest import TESTER
from workers.app import build_activities, build_worker
from workflows.contract import Signal
from workflows.payloads import ModelCallInput
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    HaltRequest,
    RiskTier,
    RunStatus,
    StopReason,
)

pytestmark = pytest.mark.integration


class NoteArgs(BaseModel):
    text: str


async def _halt_own_run(reason: str) -> None:
    run_id = activity.info().workflow_id
    await (
        activity.client()
        .get_workflow_handle(run_id)
        .signal(Signal.HALT, HaltRequest(reason=reason, by="test"))
    )


async def _note_and_halt(args: NoteArgs, ctx: ToolContext) -> dict[str, str]:
    """A tool whose run is halted while it finishes: the halt and its result come together."""
    await _halt_own_run("halted during a tool")
    return {"noted": args.text}


@pytest.fixture(scope="module")
async def rig(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Settings, ScriptedProvider]]:
    root: Path = tmp_path_factory.mktemp("halt")
    toml = TESTER.format(
        name="tester",
        max_steps=6,
        max_tokens=100000,
        max_cost=1.0,
        run_timeout=86400,
        can_events=5000,
    )
    write_agent(root / "agents", "tester", toml + "[tools.note_and_halt]\n")
    settings = Settings(
        agents_dir=root / "agents",
        data_dir=root / "data",
        task_queue=f"halt-{uuid.uuid4().hex[:8]}",
        worker_versioning=False,
    )
    scripted = ScriptedProvider({})
    tools = [
        *support_tools(PROJECT_ROOT / "agents" / "data" / "support-triage"),
        Tool(
            name="close_account",
            description="Close a customer account.",
            args=NoteArgs,
            risk_tier=RiskTier.DESTRUCTIVE,
            fn=_note_and_halt,
        ),
        Tool(
            name="note_and_halt",
            description="Take a note.",
            args=NoteArgs,
            risk_tier=RiskTier.READ,
            fn=_note_and_halt,
        ),
    ]
    activities = build_activities(
        settings, providers={"scripted": scripted, "local": LocalProvider()}, tools=tools
    )
    async with build_worker(dev_env.client, settings, activities=activities):
        yield settings, scripted


async def _run(env: WorkflowEnvironment, settings: Settings, text: str) -> AgentRunResult:
    handle = await env.client.start_workflow(
        "AgentRun",
        AgentRunRequest(agent="tester", input=text, user_id="customer-1"),
        id=f"halt-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        result_type=AgentRunResult,
    )
    return await run_result(handle)


async def test_halt_arriving_with_a_tool_result_stops_before_the_next_model_call(
    dev_env: WorkflowEnvironment, rig: tuple[Settings, ScriptedProvider]
) -> None:
    settings, scripted = rig
    text = f"note it {uuid.uuid4().hex[:6]}"
    seen: list[int] = []

    def script(request: ModelCallInput):  # type: ignore[no-untyped-def]
        seen.append(request.step)
        if request.step == 1:
            return calls(1, ("note_and_halt", {"text": "a"}), ("note_and_halt", {"text": "b"}))
        return answer("should never be asked")

    scripted.scripts[text] = script
    result = await _run(dev_env, settings, text)
    assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.HALT)
    assert seen == [1]  # no model call after the halt
    # The first note ran (its result or its cancellation came with the halt); the second
    # was never started.
    [note] = result.tool_calls
    assert note.tool == "note_and_halt" and note.decision in ("executed", "halted")


async def test_halt_arriving_with_a_model_answer_never_reaches_the_tool(
    dev_env: WorkflowEnvironment, rig: tuple[Settings, ScriptedProvider]
) -> None:
    settings, scripted = rig
    text = f"close it {uuid.uuid4().hex[:6]}"

    def script(request: ModelCallInput):  # type: ignore[no-untyped-def]
        return calls(1, ("close_account", {"text": "acct-1"}))

    async def halting_complete(request: ModelCallInput):  # type: ignore[no-untyped-def]
        await _halt_own_run("halted during a model call")
        return await original(request)

    original = scripted.complete
    scripted.scripts[text] = script
    scripted.complete = halting_complete  # type: ignore[method-assign]
    try:
        result = await _run(dev_env, settings, text)
    finally:
        scripted.complete = original  # type: ignore[method-assign]
    assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.HALT)
    # The destructive call was proposed but neither gated nor run.
    assert result.tool_calls == [] and result.approvals == []
