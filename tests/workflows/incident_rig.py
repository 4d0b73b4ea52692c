"""A worker with the real incident activities on the time-skipping server: the shipped
incident policy, a copy of the flag file, a fake pager on loopback, in-memory metrics."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.flags import evaluation_context, shared_flag_client
from activities.models.local import LocalProvider
from opsready.flags import LocalFlagFile
from opsready.incidents.service import Incidents
from opsready.runs import run_result
from opsready.settings import PROJECT_ROOT, Settings
from opsready.telemetry import Telemetry
from tests.fakes.pager_server import PagerServer
from tests.workflows.conftest import end_open_workflows
from workers.app import build_activities, build_worker
from workflows.contract import Query
from workflows.incident_types import (
    IncidentStatus,
    IncidentTrigger,
    OpenIncidentRequest,
    TriggerKind,
    UserImpact,
)
from workflows.types import AgentRunRequest, AgentRunResult

AGENT = "support-triage"


def alert(
    dedup_key: str,
    *,
    kind: TriggerKind = "slo_burn",
    user_impact: UserImpact = "some",
    is_safety: bool = False,
    runs: list[str] | None = None,
    detected_at: datetime | None = None,
    first_bad_s: float | None = None,
    **numbers: float,
) -> OpenIncidentRequest:
    """An alert as the SLO monitor sends it; `first_bad_s`: trouble began that long before."""
    detected = detected_at or datetime.now(UTC)
    first_bad = detected - timedelta(seconds=first_bad_s) if first_bad_s is not None else None
    return OpenIncidentRequest(
        dedup_key=dedup_key,
        title=f"{AGENT} is failing",
        agent=AGENT,
        trigger=IncidentTrigger(
            kind=kind,
            agent=AGENT,
            detail="task success burning",
            numbers={"burn_rate": 14.4, **numbers},
            first_bad_at=first_bad,
            detected_at=detected,
        ),
        user_impact=user_impact,
        is_safety=is_safety,
        affected_run_ids=runs or [],
    )


@dataclass
class IncidentRig:
    env: WorkflowEnvironment
    client: Client
    settings: Settings
    pager: PagerServer
    store: LocalFlagFile
    metrics: InMemoryMetricReader
    incidents: Incidents = field(init=False)

    def __post_init__(self) -> None:
        self.incidents = Incidents(self.client, self.settings.task_queue)

    def key(self, name: str) -> str:
        return f"{name}-{uuid.uuid4().hex[:6]}"

    async def open(self, request: OpenIncidentRequest) -> str:
        return (await self.incidents.open(request)).incident_id

    async def state(self, incident_id: str) -> IncidentStatus:
        handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(incident_id)
        state: IncidentStatus = await handle.query(Query.STATE, result_type=IncidentStatus)
        return state

    async def until(
        self,
        incident_id: str,
        predicate: Callable[[IncidentStatus], bool],
        *,
        skip: timedelta | None = None,
        timeout: float = 20.0,
    ) -> IncidentStatus:
        """Poll the state until `predicate` holds; with `skip`, move the server's clock
        that far between polls (retries and timers then fire without real waiting)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await self.state(incident_id)
            if predicate(state):
                return state
            if loop.time() > deadline:
                kinds = [entry.kind for entry in state.timeline]
                raise AssertionError(f"condition not met; timeline: {kinds}")
            if skip is not None:
                await self.env.sleep(skip)
            else:
                await asyncio.sleep(0.05)

    async def run_agent(self, text: str, *, expect: str = "completed", reason: str = "") -> str:
        """A support-triage run to its end on the local model; its run id."""
        handle = await self.client.start_workflow(
            "AgentRun",
            AgentRunRequest(agent=AGENT, input=text, user_id="customer-1"),
            id=f"run-{uuid.uuid4().hex[:8]}",
            task_queue=self.settings.task_queue,
            result_type=AgentRunResult,
        )
        result = await run_result(handle)  # a refused run closes Failed
        assert result.status == expect, f"{result.status}: {result.reason}"
        assert reason in (result.reason or ""), result.reason
        return handle.id

    async def restore_flags(self) -> None:
        """Undo what runbook steps changed, and wait until the worker's flag client sees it
        (it re-reads the file every 0.2 s), so the next test starts clean."""
        await self.store.unkill(agent=AGENT)
        await self.store.unkill(tool="refund_order")
        for key, value in (("paused-agents", []), ("model", ""), ("prompt-version", "")):
            await self.store.set_value(key, value)
        flags = shared_flag_client(self.settings)
        context = evaluation_context(AGENT)

        def is_clean() -> bool:
            paused = flags.evaluate("paused-agents", context, None).value
            killed = flags.evaluate("kill-switch.agent.support-triage", context, None).value
            return paused == [] and killed is False

        async with asyncio.timeout(10):
            while True:
                if is_clean():
                    return
                await asyncio.sleep(0.05)

    def flag_value(self, key: str) -> Any:
        flag = json.loads(self.settings.flags_file.read_text())["flags"][key]
        return flag["variations"][flag["fallthrough"]["variation"]] if flag["on"] else None

    def metric_points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        points: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


async def start_rig(env: WorkflowEnvironment, root: Path) -> AsyncIterator[IncidentRig]:
    """The rig, with its worker running, until the generator is closed."""
    agents_dir = root / "agents"
    shutil.copytree(PROJECT_ROOT / "agents", agents_dir)
    flags_file = root / "flags.json"
    shutil.copyfile(PROJECT_ROOT / "temporal-dev" / "flags.json", flags_file)
    pager = await PagerServer().start()
    settings = Settings(
        agents_dir=agents_dir,
        data_dir=root / "data",
        flags_file=flags_file,
        task_queue=f"incidents-{uuid.uuid4().hex[:8]}",
        worker_versioning=False,
        pager_url=pager.url,
        pager_timeout_seconds=0.3,
    )
    metrics = InMemoryMetricReader()
    telemetry = Telemetry.create(span_processors=[], metric_readers=[metrics])
    activities = build_activities(
        settings, providers={"local": LocalProvider()}, telemetry=telemetry
    )
    try:
        async with build_worker(env.client, settings, activities=activities):
            yield IncidentRig(env, env.client, settings, pager, LocalFlagFile(flags_file), metrics)
            await end_open_workflows(env.client, settings.task_queue)
    finally:
        await pager.stop()
        telemetry.shutdown()
