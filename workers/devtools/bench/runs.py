"""Starting, parking and finishing the benches' runs: `AgentRun` with the bench agent, and
its bare twin, on a bench worker's task queue."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import WorkflowHandle

from opsready.client import OpsreadyClient
from workers.devtools.bench import agent
from workers.devtools.bench.bare import BARE_WORKFLOW, BareRequest
from workers.devtools.bench.rig import Bench, WorkerProcess
from workflows import contract
from workflows.types import AgentRunResult, RunStatus

# A parked bare twin's history: start + task (4), the config and the model call (6 each).
BARE_PARKED_EVENTS = 16


def is_bare(run_id: str) -> bool:
    return run_id.startswith("bare-")


async def start_agent_run(
    bench: Bench, worker: WorkerProcess, text: str, *, traced: bool = False
) -> str:
    """Start an `AgentRun` of the bench agent as a starter would (`OpsreadyClient`)."""
    client = OpsreadyClient(bench.traced if traced else bench.client, bench.settings(worker))
    return await client.start_run(agent.AGENT, text, user_id="bench", tenant_id="bench")


async def start_bare(bench: Bench, worker: WorkerProcess, request: BareRequest) -> str:
    handle = await bench.client.start_workflow(
        BARE_WORKFLOW, request, id=f"bare-{uuid.uuid4().hex[:12]}", task_queue=worker.task_queue
    )
    return handle.id


async def start_parked(bench: Bench, worker: WorkerProcess, kind: str) -> str:
    """A run that will wait for a decision after its first model call: `agent` or `bare`."""
    if kind == "bare":
        return await start_bare(bench, worker, BareRequest(1, park=True))
    return await start_agent_run(bench, worker, agent.PARK)


def handle(bench: Bench, run_id: str) -> WorkflowHandle[Any, Any]:
    return bench.client.get_workflow_handle(run_id)


async def finish(bench: Bench, run_id: str) -> None:
    """Wait for a run's end; an `AgentRun` must have completed."""
    result = await handle(bench, run_id).result()
    if not is_bare(run_id):
        outcome = AgentRunResult.model_validate(result)
        if outcome.status is not RunStatus.COMPLETED:
            raise RuntimeError(f"{run_id} ended {outcome.status.value}: {outcome.reason}")


async def history_length(bench: Bench, run_id: str) -> int:
    description = await handle(bench, run_id).describe()
    return int(description.raw_description.workflow_execution_info.history_length)


async def is_parked(bench: Bench, run_id: str) -> bool:
    """Waiting for the decision itself: nothing in flight, no workflow task pending."""
    description = await handle(bench, run_id).describe()
    raw = description.raw_description
    if raw.pending_activities or raw.HasField("pending_workflow_task"):
        return False
    if is_bare(run_id):
        return raw.workflow_execution_info.history_length >= BARE_PARKED_EVENTS
    status = description.typed_search_attributes.get(contract.AGENT_STATUS)
    return status == RunStatus.AWAITING_APPROVAL.value
