"""Incidents from the outside: open (or join) one, list them, read one, and answer it with
its updates. The `opsready incident` commands, the `opsready.incident.open` activity and
service code all go through here.

`open_or_join` is the one way an incident opens: start `Incident` with the id of the
alert's dedup key, or, when one is open for that key, join it with the `join` update. An
incident that has been resolved lets the next alert open a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from opsready.client import describe_workflow, require_running
from opsready.errors import OpsreadyError, RunNotFoundError, one_line
from opsready.incidents.evidence import EvidenceError, read_bundle
from opsready.redaction import redact_text
from workflows import contract
from workflows.contract import INCIDENT_WORKFLOW, Query, Update
from workflows.incident_payload_types import IncidentInput
from workflows.incident_types import (
    AckRequest,
    EvidenceRef,
    IncidentState,
    IncidentStatus,
    JoinRequest,
    NoteRequest,
    OpenIncidentRequest,
    OpenIncidentResult,
    ResolveRequest,
    RunStepRequest,
    StepRun,
    incident_id,
)

QUERY_TIMEOUT = timedelta(seconds=10)
# An incident being resolved finishes its evidence and postmortem before it closes; an
# alert for its key waits that long for it, then opens the next incident.
CLOSE_WAIT = timedelta(seconds=60)
_OPEN_ATTEMPTS = 3
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class IncidentSummary(BaseModel):
    """One line of `opsready incident list`, from the visibility store."""

    incident_id: str
    agent: str | None
    severity: str | None
    state: str | None
    title: str | None
    opened_at: datetime | None
    closed_at: datetime | None


def join_request(request: OpenIncidentRequest) -> JoinRequest:
    return JoinRequest(
        trigger=request.trigger,
        user_impact=request.user_impact,
        is_safety=request.is_safety,
        cost_usd_per_hour=request.cost_usd_per_hour,
        affected_run_ids=request.affected_run_ids,
        trace_ids=request.trace_ids,
    )


def _alert_update_id(request: OpenIncidentRequest) -> str:
    """The same alert sent twice (a retried activity) is one update to Temporal."""
    digest = hashlib.sha256(request.trigger.model_dump_json().encode()).hexdigest()[:24]
    return f"alert-{digest}"


async def open_or_join(
    client: Client, request: OpenIncidentRequest, *, task_queue: str
) -> OpenIncidentResult:
    """Open the incident for `request.dedup_key`, or join the open one; which it was, and
    the incident's severity and state, in the result. A worker must be polling
    `task_queue`. Idempotent: the same alert twice is one alert."""
    workflow_id = incident_id(request.dedup_key)
    title = redact_text(request.title)
    for _ in range(_OPEN_ATTEMPTS):
        try:
            handle: WorkflowHandle[Any, Any] = await client.start_workflow(
                INCIDENT_WORKFLOW,
                IncidentInput(request=request),
                id=workflow_id,
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(contract.AGENT_NAME, request.agent),
                        SearchAttributePair(contract.INCIDENT_STATE, IncidentState.OPEN.value),
                    ]
                ),
                memo={"title": title, "dedup_key": request.dedup_key},
                static_summary=f"incident {request.agent}: {title}"[:200],
                static_details=(
                    f"{request.trigger.kind} alert for agent **{request.agent}**"
                    + (f": {redact_text(request.trigger.detail)}" if request.trigger.detail else "")
                ),
            )
        except WorkflowAlreadyStartedError:
            handle = client.get_workflow_handle(workflow_id)
        except RPCError as err:
            raise OpsreadyError(f"cannot open incident {workflow_id}: {err.message}") from None
        try:
            result: OpenIncidentResult = await handle.execute_update(
                Update.JOIN,
                join_request(request),
                id=_alert_update_id(request),
                result_type=OpenIncidentResult,
            )
            return result
        except WorkflowUpdateFailedError as err:
            reason = getattr(err.cause, "message", None) or str(err.cause)
            if "is resolved" not in reason:
                raise OpsreadyError(f"incident {workflow_id} refused the alert: {reason}") from None
            await _until_closed(handle)  # resolved meanwhile: the next attempt opens anew
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:  # NOT_FOUND: it just closed
                raise OpsreadyError(f"cannot join incident {workflow_id}: {err.message}") from None
    raise OpsreadyError(f"incident {workflow_id}: kept closing while opening; try again")


async def _until_closed(handle: WorkflowHandle[Any, Any]) -> None:
    try:
        async with asyncio.timeout(CLOSE_WAIT.total_seconds()):
            await handle.result(follow_runs=True)
    except (WorkflowFailureError, TimeoutError):
        pass  # failed or still closing: the next start attempt says which


class Incidents:
    """Read and answer `Incident` workflows on one Temporal namespace."""

    def __init__(self, temporal: Client, task_queue: str) -> None:
        self.temporal = temporal
        self.task_queue = task_queue

    async def open(self, request: OpenIncidentRequest) -> OpenIncidentResult:
        return await open_or_join(self.temporal, request, task_queue=self.task_queue)

    async def resolve_id(self, given: str) -> str:
        """`incident-KEY` as given, or the dedup key `KEY` alone."""
        for candidate in dict.fromkeys([given, incident_id(given)]):
            try:
                await self.temporal.get_workflow_handle(candidate).describe()
                return candidate
            except RPCError as err:
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise OpsreadyError(f"cannot read {candidate}: {err.message}") from None
        raise RunNotFoundError(f"no incident {given!r} in namespace {self.temporal.namespace}")

    async def list_incidents(
        self, *, state: str | None = None, agent: str | None = None, limit: int = 50
    ) -> list[IncidentSummary]:
        """Incidents, newest first, by `IncidentState` and `AgentName`."""
        query = f"WorkflowType = '{INCIDENT_WORKFLOW}'"
        if state is not None:
            if state not in {s.value for s in IncidentState}:
                known = ", ".join(s.value for s in IncidentState)
                raise OpsreadyError(f"unknown state {state!r}; one of: {known}")
            query += f" AND IncidentState = '{state}'"
        if agent is not None:
            if not agent or "'" in agent:
                raise OpsreadyError(f"invalid agent name {agent!r}")
            query += f" AND AgentName = '{agent}'"
        found: list[IncidentSummary] = []
        try:
            async for execution in self.temporal.list_workflows(query, limit=limit):
                attrs = execution.typed_search_attributes
                memo = await execution.memo()
                found.append(
                    IncidentSummary(
                        incident_id=execution.id,
                        agent=attrs.get(contract.AGENT_NAME),
                        severity=attrs.get(contract.INCIDENT_SEVERITY),
                        state=attrs.get(contract.INCIDENT_STATE),
                        title=memo.get("title") if isinstance(memo.get("title"), str) else None,
                        opened_at=execution.start_time,
                        closed_at=execution.close_time,
                    )
                )
        except RPCError as err:
            raise OpsreadyError(f"cannot list incidents: {err.message}") from None
        return found

    async def status(self, given: str) -> IncidentStatus:
        """The `state` query while it is open, its result once it has closed."""
        workflow_id = await self.resolve_id(given)
        description = await describe_workflow(
            self.temporal, workflow_id, INCIDENT_WORKFLOW, "incident", "an incident"
        )
        handle = self.temporal.get_workflow_handle(workflow_id, result_type=IncidentStatus)
        try:
            if description.status is WorkflowExecutionStatus.COMPLETED:
                done: IncidentStatus = await handle.result()
                return done
            state: IncidentStatus = await handle.query(
                Query.STATE, result_type=IncidentStatus, rpc_timeout=QUERY_TIMEOUT
            )
            return state
        except (WorkflowQueryFailedError, WorkflowFailureError) as err:
            raise OpsreadyError(f"cannot read incident {workflow_id}: {err}") from None
        except RPCError as err:
            if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                raise OpsreadyError(
                    f"no worker answered for {workflow_id} within {QUERY_TIMEOUT.seconds}s: is "
                    f"`opsready worker` running on task queue {self.task_queue}?"
                ) from None
            raise OpsreadyError(f"cannot query {workflow_id}: {err.message}") from None

    async def evidence_refs(self, target: str, *, is_path: bool) -> list[EvidenceRef]:
        """The bundles an incident recorded (by id), or the record of one bundle file: the
        hash comes from the incident named inside the bundle, never from the bundle."""
        if not is_path:
            status = await self.status(target)
            refs = [ref for ref in (status.evidence_open, status.evidence_resolve) if ref]
            if not refs:
                raise OpsreadyError(f"{status.id} has recorded no evidence bundle yet")
            return refs
        path, owner = await asyncio.to_thread(_owner_of, target)
        for status in await self._runs_of(owner):
            for ref in (status.evidence_open, status.evidence_resolve):
                if ref is not None and await asyncio.to_thread(_is_same_file, ref.path, path):
                    return [ref]
        raise EvidenceError(
            f"{path}: incident {owner} recorded no bundle at this path (check it against a "
            "hash you trust with --sha256)"
        )

    async def _runs_of(self, workflow_id: str) -> list[IncidentStatus]:
        """The state of every incident opened under this id (a dedup key reopens), newest
        first; continued runs are covered by the run that followed them."""
        found: list[IncidentStatus] = []
        query = f"WorkflowId = '{workflow_id}'" if "'" not in workflow_id else None
        if query is None:
            return found
        async for execution in self.temporal.list_workflows(query):
            handle = self.temporal.get_workflow_handle(
                workflow_id, run_id=execution.run_id, result_type=IncidentStatus
            )
            if execution.status is WorkflowExecutionStatus.COMPLETED:
                found.append(await handle.result(follow_runs=False))
            elif execution.status is WorkflowExecutionStatus.RUNNING:
                found.append(
                    await handle.query(
                        Query.STATE, result_type=IncidentStatus, rpc_timeout=QUERY_TIMEOUT
                    )
                )
        return found

    async def ack(self, given: str, *, by: str) -> IncidentStatus:
        request = _checked(AckRequest, by=by)
        return await self._update(given, Update.ACK, request, IncidentStatus)

    async def note(self, given: str, *, by: str, text: str) -> IncidentStatus:
        request = _checked(NoteRequest, by=by, text=text)
        return await self._update(given, Update.NOTE, request, IncidentStatus)

    async def run_step(
        self, given: str, step: str, *, by: str, approved_by: str | None = None
    ) -> StepRun:
        request = _checked(RunStepRequest, step=step, by=by, approved_by=approved_by)
        return await self._update(given, Update.RUN_STEP, request, StepRun)

    async def resolve(self, given: str, *, by: str, summary: str) -> IncidentStatus:
        request = _checked(ResolveRequest, by=by, summary=summary)
        return await self._update(given, Update.RESOLVE, request, IncidentStatus)

    async def _update(self, given: str, update: Update, request: BaseModel, kind: type[T]) -> T:
        workflow_id = await self.resolve_id(given)
        description = await describe_workflow(
            self.temporal, workflow_id, INCIDENT_WORKFLOW, "incident", "an incident"
        )
        require_running(description.status, workflow_id)
        try:
            result: T = await self.temporal.get_workflow_handle(workflow_id).execute_update(
                update, request, result_type=kind
            )
            return result
        except WorkflowUpdateFailedError as err:
            reason = getattr(err.cause, "message", None) or str(err.cause)
            raise OpsreadyError(f"{workflow_id}: {reason}") from None
        except RPCError as err:
            raise OpsreadyError(f"cannot {update} {workflow_id}: {err.message}") from None


def _owner_of(target: str) -> tuple[Path, str]:
    """The bundle's path and the incident it says it belongs to (the hash is then read from
    that incident, never from the bundle)."""
    path = Path(target).resolve()
    if not path.is_file():
        raise EvidenceError(f"{target}: no such evidence bundle")
    try:
        return path, str(json.loads(read_bundle(path)["incident.json"])["id"])
    except (KeyError, ValueError, TypeError, OSError):
        raise EvidenceError(f"{target}: not the evidence bundle of an incident") from None


def _is_same_file(recorded: str, path: Path) -> bool:
    return Path(recorded).resolve() == path


def _checked(model: type[M], **fields: Any) -> M:
    try:
        return model(**fields)
    except ValidationError as err:
        raise OpsreadyError(f"invalid input: {one_line(err)}") from None
