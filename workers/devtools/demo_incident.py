"""The demo's incident: the model breaks on purpose, runs fail, an incident opens, its
runbook stops refunds and switches to the fallback model, the agent recovers, an operator
acknowledges and resolves it through `opsready incident`, and MTTD and MTTR are printed.

`open_incident_for_failures` stands in for the SLO monitor (issue 10's detection half): it
turns the failed runs into the alert the monitor sends and opens the incident the way the
`opsready.incident.open` activity does. Point the demo at the monitor there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from opsready.client import OpsreadyClient
from opsready.console import waiting
from opsready.flags import LocalFlagFile
from opsready.incidents.service import Incidents, open_or_join
from opsready.settings import Settings
from workflows.incident_types import (
    IncidentStatus,
    IncidentTrigger,
    OpenIncidentRequest,
    OpenIncidentResult,
)
from workflows.types import AgentRunResult, RunStatus

AGENT = "support-triage"
BROKEN_MODEL = "local/broken"
QUESTION = "Where is my order A-1003? It was due days ago and it is late."
FAILING_RUNS = 3

# Runs the real `opsready` CLI: (address, *args, env=...) -> its output.
Cli = Callable[..., Awaitable[str]]


@dataclass
class IncidentOutcome:
    status: IncidentStatus
    failed: list[tuple[str, AgentRunResult]]
    recovered: tuple[str, AgentRunResult]


async def open_incident_for_failures(
    client: OpsreadyClient, settings: Settings, failed: list[str], key: str
) -> OpenIncidentResult:
    """The alert the SLO monitor would send for these failed runs (every run failed: the
    task-success SLO burns far above 14.4x), opened as `opsready.incident.open` opens it."""
    first_bad = None
    for run_id in failed:
        ended = (await client.temporal.get_workflow_handle(run_id).describe()).close_time
        if ended is not None and (first_bad is None or ended < first_bad):
            first_bad = ended
    now = datetime.now(UTC)
    request = OpenIncidentRequest(
        dedup_key=key,
        title=f"{AGENT}: every run fails (task success SLO burning)",
        agent=AGENT,
        trigger=IncidentTrigger(
            kind="slo_burn",
            agent=AGENT,
            detail="task success 0% over the last runs",
            numbers={"runs": len(failed), "failed": len(failed), "success_rate": 0.0},
            first_bad_at=first_bad,
            detected_at=now,
        ),
        user_impact="many",
        affected_run_ids=failed,
    )
    return await open_or_join(client.temporal, request, task_queue=settings.task_queue)


async def run_incident_scenario(
    client: OpsreadyClient,
    settings: Settings,
    address: str,
    cli: Cli,
    until_worker_sees: Callable[[str, object], Awaitable[None]],
    prefix: str = "demo",
) -> IncidentOutcome:
    store = LocalFlagFile(settings.flags_file)
    await store.set_value("model", BROKEN_MODEL)  # the fault, injected
    print(f"  (fault) the model flag serves {BROKEN_MODEL}")
    await until_worker_sees("model", BROKEN_MODEL)
    try:
        started = [await _start(client, f"{prefix}-broken{n}") for n in range(FAILING_RUNS)]
        failed = [(run_id, await client.result(run_id)) for run_id in started]
        for run_id, result in failed:
            print(f"  broken    {run_id}: {result.status.value}: {result.reason}")

        key = f"{AGENT}.task-success.{prefix}-{uuid.uuid4().hex[:6]}"
        opened = await open_incident_for_failures(client, settings, [r for r, _ in failed], key)
        print(f"  incident  {opened.incident_id}: {opened.severity.value} opened")
        incidents = Incidents(client.temporal, settings.task_queue)
        with waiting("incident: its runbook runs by itself"):
            state = await _until(incidents, opened.incident_id, lambda s: len(s.steps_run) >= 2)
        for step in state.steps_run:
            print(f"    runbook {step.step}: {'done' if step.is_ok else 'FAILED'}: {step.detail}")
        await until_worker_sees("model", "local/support-triage")

        run_id = await _start(client, f"{prefix}-recovered")
        recovered = await client.result(run_id)
        print(f"  recovered {run_id}: {recovered.status.value} on the fallback model")
        incident = opened.incident_id
        await cli(address, "incident", "ack", incident, "--by", "alice")
        resolved = await cli(
            address, "incident", "resolve", incident, "--by", "alice", "--summary",
            "the broken model was replaced by the fallback; refunds back on",
        )  # fmt: skip
        print("\n".join(f"    {line}" for line in resolved.strip().splitlines()))
        status = await incidents.status(incident)
    finally:
        await store.set_value("model", "")
        await store.unkill(tool="refund_order")
    return IncidentOutcome(status, failed, (run_id, recovered))


async def _start(client: OpsreadyClient, request_id: str) -> str:
    return await client.start_run(
        AGENT,
        QUESTION,
        user_id="customer-17",
        tenant_id="acme",
        request_id=f"{request_id}-{uuid.uuid4().hex[:6]}",
    )


async def _until(
    incidents: Incidents,
    incident_id: str,
    predicate: Callable[[IncidentStatus], bool],
    timeout: float = 30.0,
) -> IncidentStatus:
    async with asyncio.timeout(timeout):
        while True:
            state = await incidents.status(incident_id)
            if predicate(state):
                return state
            await asyncio.sleep(0.1)


def print_incident(outcome: IncidentOutcome, ui_url: str) -> None:
    s = outcome.status
    mttd = f"{s.mttd_s:.1f} s" if s.mttd_s is not None else "unknown"
    mttr = f"{s.mttr_s:.1f} s" if s.mttr_s is not None else "unknown"
    steps = ", ".join(run.step.split("/")[-1] for run in s.steps_run if run.is_ok) or "-"
    print("\nIncident")
    print(f"  {s.id}  {s.severity.value} {s.state.value}")
    print(f"  MTTD {mttd} (first failed run -> detection)   MTTR {mttr} (detection -> resolved)")
    print(f"  runbook steps: {steps}; acknowledged by {s.acknowledged_by or '-'}")
    if s.evidence_resolve is not None:
        print(f"  evidence:   {s.evidence_resolve.path}")
    if s.postmortem_path is not None:
        print(f"  postmortem: {s.postmortem_path}")
    print(f"  UI:         {ui_url}/namespaces/default/workflows/{s.id}")
    print(f"  CLI:        opsready incident show {s.id}")
    print("  Temporal:   temporal workflow list --query \"WorkflowType='Incident'\"")


def check(outcome: IncidentOutcome) -> str | None:
    """What went wrong with the incident scenario, or None."""
    s = outcome.status
    if any(result.status is not RunStatus.FAILED for _, result in outcome.failed):
        return "the broken model's runs did not fail"
    if s.state.value != "resolved" or s.mttr_s is None or s.mttd_s is None:
        return f"the incident ended {s.state.value} without MTTD/MTTR"
    if outcome.recovered[1].status is not RunStatus.COMPLETED:
        return "the run on the fallback model did not complete"
    if s.evidence_resolve is None or not Path(s.evidence_resolve.path).is_file():
        return "the incident kept no evidence bundle"
    return None
