"""The demo's incident: the model breaks on purpose, runs fail, an incident opens, its
runbook stops refunds and switches to the fallback model, the agent recovers, an operator
acknowledges and resolves it through `opsready incident`, and MTTD and MTTR are printed.

Detection is the real SLO monitor: the demo runs the `SloMonitor` workflow its Schedule
would start within the minute, over visibility, and the incident is the one it opens.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from opsready.client import OpsreadyClient
from opsready.console import waiting
from opsready.flags import LocalFlagFile
from opsready.incidents.service import Incidents
from opsready.settings import Settings
from opsready.slo.schedule import monitor_state, pause_monitor, resume_monitor
from workflows.contract import SLO_MONITOR_WORKFLOW
from workflows.incident_types import IncidentStatus, incident_id
from workflows.slo_monitor_types import SLO_MONITOR_ID, SloMonitorInput, SloMonitorReport
from workflows.types import AgentRunResult, RunStatus

AGENT = "support-triage"
BROKEN_MODEL = "local/broken"
QUESTION = "Where is my order A-1003? It was due days ago and it is late."
FAILING_RUNS = 3
# The demo has a dozen runs, not the production minimum of events in a burn-rate window.
MIN_EVENTS = FAILING_RUNS
MONITOR_PASSES = 5
# The pass judges the task-success SLO alone: the demo's own kill switches and guardrail hits
# also burn the safety SLO, and that SEV1 incident's runbook would pause the agent.
SLO = "success"
KEY = f"{AGENT}:slo:{SLO}"  # the dedup key of the monitor's alert for it
DETECT_TIMEOUT_S = 60.0

# Runs the real `opsready` CLI: (address, *args, env=...) -> its output.
Cli = Callable[..., Awaitable[str]]


@dataclass
class IncidentOutcome:
    status: IncidentStatus
    failed: list[tuple[str, AgentRunResult]]
    recovered: tuple[str, AgentRunResult]


async def detect_with_monitor(client: OpsreadyClient, settings: Settings) -> str:
    """Run passes of the real SLO monitor (the `SloMonitor` workflow its Schedule starts
    every minute) over the agent until one asks for an incident about it, and return that
    incident's id. A pass right after the failures may not see the last of them yet
    (visibility is eventually consistent), hence a few passes, each a second apart."""
    request = SloMonitorInput(
        agents=[AGENT], task_queues=[settings.task_queue], min_events=MIN_EVENTS, only=[SLO]
    )
    report: SloMonitorReport | None = None
    async with asyncio.timeout(DETECT_TIMEOUT_S):
        for attempt in range(MONITOR_PASSES):
            if attempt:
                await asyncio.sleep(1.0)  # a second for visibility to catch up, not a sync
            report = await client.temporal.execute_workflow(
                SLO_MONITOR_WORKFLOW,
                request,
                id=f"{SLO_MONITOR_ID}-demo-{uuid.uuid4().hex[:8]}",
                task_queue=settings.task_queue,
                result_type=SloMonitorReport,
                execution_timeout=timedelta(minutes=2),
                static_summary="SLO monitor pass started by the demo",
            )
            if KEY in report.requested + report.already_open:
                return incident_id(KEY)
    seen = "; ".join(a.title for a in report.alerts) if report else "no pass ran"
    raise RuntimeError(f"the SLO monitor opened no task-success incident (alerts: {seen})")


async def run_incident_scenario(
    client: OpsreadyClient,
    settings: Settings,
    address: str,
    cli: Cli,
    until_worker_sees: Callable[[str, object], Awaitable[None]],
    prefix: str = "demo",
) -> IncidentOutcome:
    incidents = Incidents(client.temporal, settings.task_queue)
    await _resolve_leftover(incidents)
    # The monitor's Schedule (`opsready dev` starts it) would answer the faults below on its
    # own minute, with every alert of the agent: the rehearsal pauses it and runs one pass.
    schedule = await monitor_state(client.temporal)
    if schedule.exists and not schedule.paused:
        await pause_monitor(client.temporal, "paused by the demo while it breaks things")
    store = LocalFlagFile(settings.flags_file)
    await store.set_value("model", BROKEN_MODEL)  # the fault, injected
    print(f"  (fault) the model flag serves {BROKEN_MODEL}")
    await until_worker_sees("model", BROKEN_MODEL)
    try:
        started = [await _start(client, f"{prefix}-broken{n}") for n in range(FAILING_RUNS)]
        failed = [(run_id, await client.result(run_id)) for run_id in started]
        for run_id, result in failed:
            print(f"  broken    {run_id}: {result.status.value}: {result.reason}")

        with waiting("SLO monitor: a pass over the agent's SLIs"):
            incident = await detect_with_monitor(client, settings)
        opened = await incidents.status(incident)
        print(f"  incident  {incident}: {opened.severity.value} opened by the SLO monitor")
        print(f"    {opened.title}")
        with waiting("incident: its runbook runs by itself"):
            state = await _until(incidents, incident, lambda s: len(s.steps_run) >= 2)
        for step in state.steps_run:
            print(f"    runbook {step.step}: {'done' if step.is_ok else 'FAILED'}: {step.detail}")
        await until_worker_sees("model", "local/support-triage")

        run_id = await _start(client, f"{prefix}-recovered")
        recovered = await client.result(run_id)
        why = "" if recovered.status is RunStatus.COMPLETED else f": {recovered.reason}"
        print(f"  recovered {run_id}: {recovered.status.value} on the fallback model{why}")
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
        if schedule.exists and not schedule.paused:
            await resume_monitor(client.temporal, schedule.note)
    return IncidentOutcome(status, failed, (run_id, recovered))


async def _resolve_leftover(incidents: Incidents) -> None:
    """An earlier demo that stopped half-way may have left its incident open; this one
    needs a fresh one (a join would show the old runbook's steps)."""
    for found in await incidents.list_incidents(agent=AGENT):
        if found.closed_at is None and found.incident_id == incident_id(KEY):
            await incidents.resolve(found.incident_id, by="demo", summary="left by a demo")
            print(f"  (an earlier demo's {found.incident_id} was still open: resolved)")


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
