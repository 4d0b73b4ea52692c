"""The typed Python API service code calls to start, query, approve and halt agent runs.

The `opsready` CLI is a thin shell around this class. Every user mistake (unknown agent,
empty text, unknown run, an approval for a run that awaits none) raises an `OpsreadyError`
with a one-line message; Temporal's own errors do not leak out of it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
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

from opsready.connection import connect
from opsready.errors import (
    NotAwaitingApprovalError,
    OpsreadyError,
    RunEndedError,
    RunNotFoundError,
    UnknownAgentError,
    one_line,
)
from opsready.redaction import redact_text
from opsready.settings import Settings
from opsready.telemetry import Telemetry
from opsready.waits import Wait, waits
from workflows import contract
from workflows.contract import AGENT_RUN_WORKFLOW, Query, Signal, Update
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalDecision,
    HaltRequest,
    RunStatus,
)

# A query needs a worker; without one the server would hold the call for a minute.
QUERY_TIMEOUT = timedelta(seconds=10)


class RunSummary(BaseModel):
    """One line of `opsready list`: what the Temporal visibility store knows of a run."""

    run_id: str
    agent: str | None
    status: str
    user: str | None
    tenant: str | None
    cost_usd: float | None
    tokens: int | None
    started_at: datetime | None
    closed_at: datetime | None


def state_of(
    agent: str, result: AgentRunResult, started_at: datetime | None = None
) -> AgentRunState:
    """The final state of an ended run, rebuilt from its result."""
    return AgentRunState(
        agent=agent,
        status=result.status,
        step=result.steps,
        usage=result.usage,
        tool_calls=result.tool_calls,
        approvals=result.approvals,
        config=result.config,
        safety_events=result.safety_events,
        output=result.output,
        reason=result.reason,
        stop_reason=result.stop_reason,
        started_at=started_at,
        fallbacks=result.fallbacks,
    )


class OpsreadyClient:
    """Start and steer `AgentRun` workflows. `temporal` is the underlying Temporal client."""

    def __init__(self, temporal: Client, settings: Settings | None = None) -> None:
        self.temporal = temporal
        self.settings = settings or Settings.from_env()

    @classmethod
    async def connect(
        cls,
        settings: Settings | None = None,
        *,
        address: str | None = None,
        telemetry: Telemetry | None = None,
    ) -> OpsreadyClient:
        """Connect with tracing on: every run's trace starts at its starter."""
        return cls(await connect(address, telemetry=telemetry or Telemetry.create()), settings)

    # --- starting -------------------------------------------------------------------------

    def run_id_for(self, agent: str, request_id: str) -> str:
        """Run ids derive from the caller's request id, so a retried start is the same run."""
        return f"{agent}-{request_id}"

    async def start_run(
        self,
        agent: str,
        text: str,
        *,
        user_id: str | None = None,
        tenant_id: str | None = None,
        request_id: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Start a run (or find the one already started for this request id); its run id."""
        try:
            request = AgentRunRequest(
                agent=agent,
                input=text.strip(),
                user_id=user_id,
                tenant_id=tenant_id,
                request_id=request_id or uuid.uuid4().hex[:12],
                metadata=metadata or {},
            )
        except ValidationError as err:
            raise OpsreadyError(f"invalid run request: {one_line(err)}") from None
        self._check_agent(agent)
        assert request.request_id is not None
        run_id = self.run_id_for(agent, request.request_id)
        attributes = [
            SearchAttributePair(contract.AGENT_NAME, agent),
            SearchAttributePair(contract.AGENT_STATUS, RunStatus.RUNNING.value),
        ]
        attributes += [SearchAttributePair(contract.AGENT_USER, user_id)] if user_id else []
        attributes += [SearchAttributePair(contract.AGENT_TENANT, tenant_id)] if tenant_id else []
        preview = redact_text(request.input)
        preview = preview if len(preview) <= 120 else preview[:117] + "..."
        try:
            await self.temporal.start_workflow(
                AGENT_RUN_WORKFLOW,
                request,
                id=run_id,
                task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes(attributes),
                memo={"request_id": request.request_id, "user": user_id, "tenant": tenant_id},
                static_summary=f"{agent}: {preview}",
                static_details=(
                    f"agent **{agent}**, user {user_id or '-'}, tenant {tenant_id or '-'}, "
                    f"request {request.request_id}"
                ),
            )
        except WorkflowAlreadyStartedError:
            pass  # the same request id already ran: that run is the answer (idempotent start)
        except RPCError as err:
            raise OpsreadyError(f"cannot start {run_id}: {err.message}") from None
        return run_id

    def _check_agent(self, agent: str) -> None:
        """Refuse unknown agents early when the definitions are here; a starter without
        them (another machine) learns it from the run, which fails with the same reason."""
        agents_dir = self.settings.agents_dir
        if not agents_dir.is_dir() or (agents_dir / f"{agent}.toml").is_file():
            return
        known = sorted(p.stem for p in agents_dir.glob("*.toml") if p.stem != "pricing")
        raise UnknownAgentError(
            f"unknown agent {agent!r}; agents in {agents_dir}: {', '.join(known) or 'none'}"
        )

    # --- reading --------------------------------------------------------------------------

    def _handle(self, run_id: str) -> WorkflowHandle[Any, Any]:
        return self.temporal.get_workflow_handle(run_id)

    async def _describe(self, run_id: str) -> WorkflowExecutionDescription:
        return await describe_workflow(
            self.temporal, run_id, AGENT_RUN_WORKFLOW, "run", "an agent run"
        )

    async def state(self, run_id: str) -> AgentRunState:
        """Where the run stands: the `state` query while it runs (a worker must be polling),
        its recorded result once it has ended (no worker needed)."""
        description = await self._describe(run_id)
        if description.status is not WorkflowExecutionStatus.RUNNING:
            result = await self.result(run_id)
            agent = description.typed_search_attributes.get(contract.AGENT_NAME) or "?"
            return state_of(agent, result, started_at=description.start_time)
        try:
            state: AgentRunState = await self._handle(run_id).query(
                Query.STATE, result_type=AgentRunState, rpc_timeout=QUERY_TIMEOUT
            )
            return state
        except WorkflowQueryFailedError as err:
            raise OpsreadyError(f"the state query of {run_id} failed: {err}") from None
        except RPCError as err:
            if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                raise OpsreadyError(
                    f"no worker answered for {run_id} within {QUERY_TIMEOUT.seconds}s: is "
                    f"`opsready worker` running on task queue {self.settings.task_queue}?"
                ) from None
            raise OpsreadyError(f"cannot query {run_id}: {err.message}") from None

    async def waits(self, run_id: str) -> list[Wait]:
        """What a running run waits on in Temporal's queues (none once it has ended)."""
        description = await self._describe(run_id)
        if description.status is not WorkflowExecutionStatus.RUNNING:
            return []
        return waits(description, self.settings.task_queue)

    async def result(self, run_id: str) -> AgentRunResult:
        """Wait for the run to end (following continue-as-new) and return its result."""
        await self._describe(run_id)
        try:
            handle = self.temporal.get_workflow_handle(run_id, result_type=AgentRunResult)
            result: AgentRunResult = await handle.result()
        except WorkflowFailureError as err:
            raise OpsreadyError(f"{run_id} failed: {err.cause or err}") from None
        return result

    async def list_runs(
        self, *, status: str | None = None, agent: str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        """Recent agent runs, newest first, filtered by `AgentStatus` and `AgentName`."""
        query = f"WorkflowType = '{AGENT_RUN_WORKFLOW}'"
        if status is not None:
            if status not in {s.value for s in RunStatus}:
                known = ", ".join(s.value for s in RunStatus)
                raise OpsreadyError(f"unknown status {status!r}; one of: {known}")
            query += f" AND AgentStatus = '{status}'"
        if agent is not None:
            if not agent or "'" in agent:
                raise OpsreadyError(f"invalid agent name {agent!r}")
            query += f" AND AgentName = '{agent}'"
        runs: list[RunSummary] = []
        try:
            async for execution in self.temporal.list_workflows(query, limit=limit):
                attrs = execution.typed_search_attributes
                runs.append(
                    RunSummary(
                        run_id=execution.id,
                        agent=attrs.get(contract.AGENT_NAME),
                        status=attrs.get(contract.AGENT_STATUS)
                        or (execution.status.name.lower() if execution.status else "unknown"),
                        user=attrs.get(contract.AGENT_USER),
                        tenant=attrs.get(contract.AGENT_TENANT),
                        cost_usd=attrs.get(contract.AGENT_COST_USD),
                        tokens=attrs.get(contract.AGENT_TOKENS),
                        started_at=execution.start_time,
                        closed_at=execution.close_time,
                    )
                )
        except RPCError as err:
            raise OpsreadyError(f"cannot list runs: {err.message}") from None
        return runs

    # --- steering -------------------------------------------------------------------------

    async def approve(
        self,
        run_id: str,
        approver: str,
        *,
        request_id: str | None = None,
        comment: str | None = None,
    ) -> AgentRunState:
        return await self.decide(run_id, True, approver, request_id=request_id, comment=comment)

    async def reject(
        self,
        run_id: str,
        approver: str,
        *,
        request_id: str | None = None,
        comment: str | None = None,
    ) -> AgentRunState:
        return await self.decide(run_id, False, approver, request_id=request_id, comment=comment)

    async def decide(
        self,
        run_id: str,
        approved: bool,
        approver: str,
        *,
        request_id: str | None = None,
        comment: str | None = None,
    ) -> AgentRunState:
        """Send a decision through the `decide` update: refused decisions raise, accepted
        ones return the state after the workflow acted on them."""
        try:
            decision = ApprovalDecision(
                request_id=request_id, approved=approved, approver=approver, comment=comment
            )
        except ValidationError as err:
            raise OpsreadyError(f"invalid decision: {one_line(err)}") from None
        await self._require_open(run_id)
        try:
            state: AgentRunState = await self._handle(run_id).execute_update(
                Update.DECIDE, decision, result_type=AgentRunState
            )
            return state
        except WorkflowUpdateFailedError as err:
            reason = err.cause.message if hasattr(err.cause, "message") else str(err.cause)
            raise NotAwaitingApprovalError(f"{run_id}: {reason}") from None
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise RunEndedError(f"{run_id} has already ended") from None
            raise OpsreadyError(f"cannot send the decision to {run_id}: {err.message}") from None

    async def halt(self, run_id: str, *, reason: str, by: str) -> None:
        """Stop the run at once (also while it waits for an approval or runs a tool)."""
        try:
            request = HaltRequest(reason=reason, by=by)
        except ValidationError as err:
            raise OpsreadyError(f"invalid halt: {one_line(err)}") from None
        await self._require_open(run_id)
        try:
            await self._handle(run_id).signal(Signal.HALT, request)
        except RPCError as err:
            raise OpsreadyError(f"cannot halt {run_id}: {err.message}") from None

    async def _require_open(self, run_id: str) -> None:
        require_running((await self._describe(run_id)).status, run_id)


async def describe_workflow(
    temporal: Client, workflow_id: str, workflow_type: str, noun: str, kind: str
) -> WorkflowExecutionDescription:
    """Describe `workflow_id`; one clear error when it does not exist or is another type."""
    try:
        description = await temporal.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise RunNotFoundError(
                f"no {noun} {workflow_id!r} in namespace {temporal.namespace}"
            ) from None
        raise OpsreadyError(f"cannot read {workflow_id}: {err.message}") from None
    if description.workflow_type != workflow_type:
        raise RunNotFoundError(f"{workflow_id!r} is a {description.workflow_type}, not {kind}")
    return description


def require_running(status: WorkflowExecutionStatus | None, workflow_id: str) -> None:
    if status is not WorkflowExecutionStatus.RUNNING:
        ended = status.name.lower() if status else "unknown"
        raise RunEndedError(f"{workflow_id} has already ended ({ended})")
