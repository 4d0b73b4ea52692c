"""The bare twin of `AgentRun` for the benches: a plain Temporal workflow that calls trivial
activities in the same sequence (1 config call, K+1 model calls, K tool calls), optionally
parked on a decision between the first model call and the tool, like a run awaiting
approval. Nothing else: no state query, no search attributes, no checks.

Kept tiny on purpose: the sandbox imports this module for every run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

BARE_WORKFLOW = "BareRun"
CONFIG, MODEL, TOOL = "bare.config", "bare.model", "bare.tool"
_TIMEOUT = timedelta(seconds=30)


@dataclass
class BareRequest:
    tool_calls: int  # K
    park: bool = False  # wait for a decision (update or signal) before the first tool


@workflow.defn(name=BARE_WORKFLOW)
class BareRun:
    def __init__(self) -> None:
        self._decided = False

    @workflow.run
    async def run(self, request: BareRequest) -> str:
        await workflow.execute_activity(CONFIG, "bench", start_to_close_timeout=_TIMEOUT)
        for step in range(request.tool_calls):
            await workflow.execute_activity(MODEL, step, start_to_close_timeout=_TIMEOUT)
            if request.park and step == 0:
                await workflow.wait_condition(lambda: self._decided)
            await workflow.execute_activity(TOOL, step, start_to_close_timeout=_TIMEOUT)
        answer: str = await workflow.execute_activity(
            MODEL, request.tool_calls, start_to_close_timeout=_TIMEOUT
        )
        return answer

    @workflow.update(name="decide")
    async def decide(self, approved: bool) -> bool:
        self._decided = True
        return approved

    @workflow.signal(name="decision")
    def decision(self, approved: bool) -> None:
        self._decided = True


@activity.defn(name=CONFIG)
async def bare_config(agent: str) -> dict[str, str]:
    return {"agent": agent, "model": "bench"}


@activity.defn(name=MODEL)
async def bare_model(step: int) -> str:
    return f"answer after {step} tool calls"


@activity.defn(name=TOOL)
async def bare_tool(step: int) -> str:
    return f"echo {step}"


def bare_activities() -> list[Callable[..., Any]]:
    return [bare_config, bare_model, bare_tool]


def bare_runner() -> SandboxedWorkflowRunner:
    """The sandbox with this module passed through, the treatment opsready's workflow
    package gets (the plugin adds its own passthrough on top)."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(__name__)
    )
