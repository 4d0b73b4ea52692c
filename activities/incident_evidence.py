"""The evidence activity: what was known about an incident's runs, bundled with a hash.

For each affected run (up to `MAX_HISTORIES`) it exports the run's history from Temporal,
and reads from that history the configuration the run resolved (agent and prompt versions,
model, variant, config hash, every flag evaluation with its variation and reason), how it
ended, the build that ran it and its trace id. With the alerts' numbers and the incident's
state they go into one deterministic .tar.gz (`opsready.incidents.evidence`); the resolve
bundle also carries the open one inside, so the last bundle holds everything.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from opsready.incidents.evidence import (
    EvidenceError,
    file_name,
    incident_folder,
    verify_bundle,
    write_bundle,
)
from opsready.settings import Settings
from workflows.contract import Activity, ErrorType
from workflows.incident_payload_types import EvidenceInput, EvidenceResult

MAX_HISTORIES = 50  # histories exported per bundle; every affected run id is still listed
TRACE_HEADER = "_tracer-data"  # where temporalio's TracingInterceptor puts the trace context
_CONFIG_FIELDS = (
    *("agent", "agent_version", "prompt_version", "provider", "model", "variant"),
    *("config_hash", "fallback_model", "flags_degraded", "is_shadow"),
)


class RunFacts:
    """What one run's history says about the configuration in force and how it ended."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.status = "running"
        self.halted_status: str | None = None  # from the close_halted activity's input
        self.config: dict[str, Any] | None = None
        self.flags: list[dict[str, Any]] = []
        self.build_id: str | None = None
        self.trace_id: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "build_id": self.build_id,
            "trace_id": self.trace_id,
            "config": self.config,
        }


async def _decode(client: Client, payload: Any) -> Any:
    """A payload as plain JSON values, through the client's codec (if any)."""
    (value,) = await client.data_converter.decode([payload], [dict])
    return value


async def read_facts(client: Client, run_id: str, history: WorkflowHistory) -> RunFacts:
    facts = RunFacts(run_id)
    config_scheduled: int | None = None
    for event in history.events:
        await _read_event(client, facts, event)
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == Activity.RESOLVE_CONFIG:
                config_scheduled = event.event_id
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id == config_scheduled and done.result.payloads:
                config = await _decode(client, done.result.payloads[0])
                facts.config = {k: config.get(k) for k in _CONFIG_FIELDS if k in config}
                facts.flags = list(config.get("flags") or [])
    return facts


async def _read_event(client: Client, facts: RunFacts, event: HistoryEvent) -> None:
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        header = event.workflow_execution_started_event_attributes.header.fields
        if TRACE_HEADER in header:
            carrier = await _decode(client, header[TRACE_HEADER])
            parts = str(carrier.get("traceparent", "")).split("-")
            facts.trace_id = parts[1] if len(parts) == 4 else None
    elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and facts.build_id is None:
        version = event.workflow_task_completed_event_attributes.deployment_version
        facts.build_id = version.build_id or None
    elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        result = event.workflow_execution_completed_event_attributes.result
        ended = await _decode(client, result.payloads[0]) if result.payloads else {}
        facts.status = str(ended.get("status", "completed"))
    elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        facts.status = "continued_as_new"
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        scheduled = event.activity_task_scheduled_event_attributes
        if scheduled.activity_type.name == Activity.CLOSE_HALTED and scheduled.input.payloads:
            # A halted run closes Canceled, which keeps no details: its result is here.
            closing = await _decode(client, scheduled.input.payloads[0])
            facts.halted_status = str((closing.get("result") or {}).get("status", "halted"))
    elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        failure = event.workflow_execution_failed_event_attributes.failure
        info = failure.application_failure_info
        if info.type in _RUN_FAILURES and info.details.payloads:  # the typed result
            ended = await _decode(client, info.details.payloads[0])
            facts.status = str(ended.get("status", "failed"))
        else:
            facts.status = "workflow_failed"
    elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
        facts.status = facts.halted_status or "canceled"
    elif kind in _ENDINGS:
        facts.status = _ENDINGS[kind]


# How an AgentRun that did not complete closes (workflows.run_end): failed, timed out and
# over-budget runs fail with one of these types, their typed result the first detail.
_RUN_FAILURES = {ErrorType.RUN_FAILED, ErrorType.RUN_TIMED_OUT, ErrorType.RUN_BUDGET_EXCEEDED}
_ENDINGS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "workflow_timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
}


def flags_in_force(runs: list[RunFacts]) -> dict[str, Any]:
    """Each flag's evaluations per run, and how many runs got each value."""
    counts: dict[str, dict[str, int]] = {}
    for run in runs:
        for flag in run.flags:
            key = str(flag.get("key"))
            shown = f"{flag.get('value')!r} (variation {flag.get('variation')})"
            counts.setdefault(key, {}).setdefault(shown, 0)
            counts[key][shown] += 1
    return {"in_force": counts, "by_run": {run.run_id: run.flags for run in runs}}


def config_versions(runs: list[RunFacts]) -> dict[str, Any]:
    versions: dict[str, list[str]] = {}
    for run in runs:
        config = run.config or {}
        key = (
            f"agent {config.get('agent_version')} prompt {config.get('prompt_version')} "
            f"model {config.get('provider')}/{config.get('model')} variant "
            f"{config.get('variant')} config {config.get('config_hash')} build {run.build_id}"
        )
        versions.setdefault(key, []).append(run.run_id)
    return {"versions": versions, "by_run": {run.run_id: run.summary() for run in runs}}


class EvidenceActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn(name=Activity.INCIDENT_EVIDENCE)
    async def gather_evidence(self, request: EvidenceInput) -> EvidenceResult:
        client = activity.client()
        status = request.status
        items: dict[str, Any] = {}
        problems: list[str] = []
        runs: list[RunFacts] = []
        for run_id in status.affected_run_ids[:MAX_HISTORIES]:
            try:
                history = await client.get_workflow_handle(run_id).fetch_history()
            except RPCError as err:
                why = "no such run" if err.status is RPCStatusCode.NOT_FOUND else err.message
                problems.append(f"{run_id}: {why}")
                continue
            items[f"runs/{file_name(run_id)}/history.json"] = history.to_json().encode()
            facts = await read_facts(client, run_id, history)
            items[f"runs/{file_name(run_id)}/run.json"] = {**facts.summary(), "flags": facts.flags}
            runs.append(facts)
        skipped = status.affected_run_ids[MAX_HISTORIES:]
        if skipped:
            problems.append(f"{len(skipped)} more runs listed without their histories")
        items["incident.json"] = status
        items["alerts.json"] = [alert.model_dump(mode="json") for alert in request.alerts]
        items["affected_runs.json"] = list(status.affected_run_ids)
        items["flags.json"] = flags_in_force(runs)
        items["config_versions.json"] = config_versions(runs)
        traces = [*status.trace_ids, *(run.trace_id for run in runs if run.trace_id)]
        items["traces.json"] = sorted(set(traces))
        if request.open_bundle is not None:
            items.update(await self._open_bundle(request, problems))
        items["problems.json"] = problems
        name = file_name(status.id)
        folder = incident_folder(self._settings.incidents_dir, status.id, status.opened_at)
        try:
            ref = await asyncio.to_thread(write_bundle, folder, name, request.phase, items)
        except (EvidenceError, OSError) as err:
            raise ApplicationError(f"cannot write the evidence bundle: {err}") from None
        return EvidenceResult(
            ref=ref.as_evidence(),
            runs=len(status.affected_run_ids),
            histories=len(runs),
            problems=problems,
        )

    async def _open_bundle(self, request: EvidenceInput, problems: list[str]) -> dict[str, Any]:
        """The open bundle, checked against its recorded hash, inside the resolve bundle."""
        ref = request.open_bundle
        assert ref is not None
        try:
            await asyncio.to_thread(verify_bundle, ref.path, ref.sha256)
            data = await asyncio.to_thread(Path(ref.path).read_bytes)
        except (EvidenceError, OSError) as err:
            problems.append(f"the open bundle: {err}")
            return {}
        return {"open/evidence-open.tar.gz": data, "open/sha256.txt": f"{ref.sha256}\n".encode()}
