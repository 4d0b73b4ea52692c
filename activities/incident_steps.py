"""Runbook steps as one activity: what each action changes, through the flag store (the
local flag file or LaunchDarkly), the Worker Deployment API, or `halt` signals to runs.

| action | target | what it does |
|---|---|---|
| engage_kill_switch | agent:A / tool:T | turns the switch on; for an agent, halts its open runs now |
| rollback_flag | flag:K | serves `params.value`, or variation `params.variation`, else variation 0 (every shipped flag's baseline) to everyone |
| rollback_deployment | deployment:D | new runs go back to the build that was current before |
| switch_fallback_model | agent:A | the `model` flag serves `params.model`, else the `fallback-model` flag's value |
| pause_agent | agent:A | adds A to the `paused-agents` flag: new runs are refused, open runs go on |
| drain_task_queue | queue:Q | halts every open agent run on task queue Q |

Every action is idempotent except the deployment rollback, which the workflow runs once.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from opsready.deployment import WorkerDeployment
from opsready.errors import (
    LaunchDarklyUnavailableError,
    OpsreadyError,
    TemporalUnavailableError,
)
from opsready.flags import FlagInfo, FlagStore, flag_store, show_value
from opsready.settings import Settings
from workflows.contract import (
    AGENT_RUN_WORKFLOW,
    PAUSED_AGENTS_FLAG,
    Activity,
    ErrorType,
    Signal,
)
from workflows.incident_payload_types import RunStepInput, StepOutcome
from workflows.incident_types import PlannedStep
from workflows.types import HaltRequest

MODEL_FLAG, FALLBACK_FLAG = "model", "fallback-model"
HALT_CONCURRENCY = 32
MAX_HALTS = 5000
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # what may go into a visibility query


def served(flag: FlagInfo) -> Any:
    """The value the flag serves to everyone now (None when off without an off value, or
    split by a rollout)."""
    index = flag.fallthrough_variation if flag.on else flag.off_variation
    if index is None or not 0 <= index < len(flag.variations):
        return None
    return flag.variations[index]


def _checked_name(name: str, kind: str) -> str:
    if not _SAFE_NAME.match(name):
        raise OpsreadyError(f"{kind} name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


async def halt_open_runs(
    client: Client, *, agent: str | None = None, task_queue: str | None = None, reason: str
) -> int:
    """Send `halt` to every open agent run of `agent` (or on `task_queue`); how many."""
    query = f"WorkflowType='{AGENT_RUN_WORKFLOW}' AND ExecutionStatus='Running'"
    if agent is not None:
        query += f" AND AgentName='{_checked_name(agent, 'agent')}'"
    if task_queue is not None:
        query += f" AND TaskQueue='{_checked_name(task_queue, 'task queue')}'"
    ids = [run.id async for run in client.list_workflows(query, limit=MAX_HALTS)]
    request = HaltRequest(reason=reason, by="incident")
    gate = asyncio.Semaphore(HALT_CONCURRENCY)

    async def halt(run_id: str) -> None:
        async with gate:
            try:
                await client.get_workflow_handle(run_id).signal(Signal.HALT, request)
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:  # ended meanwhile: fine
                    raise

    await asyncio.gather(*(halt(run_id) for run_id in ids))
    return len(ids)


class RunbookActions:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn(name=Activity.INCIDENT_RUN_STEP)
    async def run_step(self, request: RunStepInput) -> StepOutcome:
        step = request.step
        reason = f"incident {request.incident_id}: {step.key} by {request.by}"
        store = flag_store(self._settings)
        try:
            return StepOutcome(detail=await self._act(step, store, reason))
        except (LaunchDarklyUnavailableError, TemporalUnavailableError) as err:
            raise ApplicationError(str(err)) from None  # may work on the next attempt
        except OpsreadyError as err:
            raise ApplicationError(
                str(err), type=ErrorType.RUNBOOK_STEP_FAILED, non_retryable=True
            ) from None
        except RPCError as err:
            raise ApplicationError(f"Temporal refused: {err.message}") from None
        finally:
            await store.aclose()

    async def _act(self, step: PlannedStep, store: FlagStore, reason: str) -> str:
        kind, _, name = step.target.partition(":")
        params = step.params
        if step.action == "engage_kill_switch":
            flag = await store.kill(
                agent=name if kind == "agent" else None,
                tool=name if kind == "tool" else None,
                reason=reason,
            )
            if kind != "agent":
                return f"{flag.key} is on: calls of {name} are refused"
            try:
                halted = await halt_open_runs(activity.client(), agent=name, reason=reason)
            except RPCError as err:  # the switch is on: every worker's listener halts them
                return (
                    f"{flag.key} is on: new runs refused; halting open runs failed "
                    f"({err.message}), the workers' kill-switch listeners halt them"
                )
            return f"{flag.key} is on: new runs refused, {halted} open runs halted"
        if step.action == "rollback_flag":
            return await self._rollback_flag(store, name, params)
        if step.action == "rollback_deployment":
            change = await WorkerDeployment(activity.client(), name).rollback()
            return f"new runs of {name} go to {change.after.current} (were {change.before.current})"
        if step.action == "switch_fallback_model":
            return await self._switch_model(store, params)
        if step.action == "pause_agent":
            return await self._pause(store, name)
        if step.action == "drain_task_queue":
            halted = await halt_open_runs(activity.client(), task_queue=name, reason=reason)
            return f"{halted} open runs on task queue {name} halted"
        raise OpsreadyError(f"unknown runbook action {step.action!r}")

    async def _rollback_flag(
        self, store: FlagStore, key: str, params: dict[str, str | int | float | bool]
    ) -> str:
        if "value" in params:
            flag = await store.set_value(key, params["value"])
        else:
            variation = params.get("variation", 0)
            if not isinstance(variation, int) or isinstance(variation, bool):
                raise OpsreadyError(f"params.variation of a rollback_flag step: {variation!r}")
            flag = await store.set_rollout(key, {variation: 100.0})
        return f"{key} now serves {flag.serving()}"

    async def _switch_model(
        self, store: FlagStore, params: dict[str, str | int | float | bool]
    ) -> str:
        model = params.get("model") or served(await store.get_flag(FALLBACK_FLAG))
        if not isinstance(model, str) or "/" not in model:
            raise OpsreadyError(
                "no fallback model: give the step params.model, or set the fallback-model flag"
            )
        before = served(await store.get_flag(MODEL_FLAG))
        await store.set_value(MODEL_FLAG, model)
        was = show_value(before) if before else "the agents' own"
        return f"the {MODEL_FLAG} flag serves {model} (was {was})"

    async def _pause(self, store: FlagStore, agent: str) -> str:
        current = served(await store.get_flag(PAUSED_AGENTS_FLAG))
        paused = [a for a in current if isinstance(a, str)] if isinstance(current, list) else []
        if agent not in paused:
            await store.set_value(PAUSED_AGENTS_FLAG, sorted({*paused, agent}))
        return f"{agent} is paused: new runs are refused, open runs go on ({PAUSED_AGENTS_FLAG})"
