"""The typed Python API service code calls to start, query, wait on, approve and halt runs.

The `opsready` CLI is a thin shell around this class. Every user mistake (unknown agent,
empty text, unknown run, an approval for a run that awaits none) raises an `OpsreadyError`
with a one-line message; Temporal's own errors do not leak out of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta
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
    WorkflowUpdateRPCTimeoutOrCancelledError,
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
    NoWorkerError,
    OpsreadyError,
    RequestIdReusedError,
    RunEndedError,
    one_line,
)
from opsready.names import check_request_id, known_agents, unknown_agent
from opsready.redaction import pseudonymous_user, redact_text
from opsready.run_workers import (
    PendingCall,
    Placement,
    pending_calls,
    placement_of,
    serves,
    workflow_pollers,
)
from opsready.runs import (
    RunSummary,
    describe_workflow,
    require_running,
    run_result,
    state_of,
)
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
    PendingApproval,
    RunStatus,
)

# A query needs a worker; without one the server would hold the call for a minute.
QUERY_TIMEOUT = timedelta(seconds=10)
# How long a decision or halt waits for a worker to act on it before saying none did.
ACT_TIMEOUT_SECONDS = 15.0
# The memo entry that tells a reused request id with the same text from one with another.
INPUT_HASH = "input_sha256"


def input_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
        """Start a run (or find the one already started for this request id, for the same
        text: another text under a used request id raises RequestIdReusedError); its run id."""
        if request_id is not None:
            check_request_id(request_id)
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
        # What anyone who may list workflows sees: the user as AgentUser shows it (a
        # pseudonym when the id looks like personal data), the input redacted.
        user = pseudonymous_user(user_id, self.settings.user_attribute) if user_id else None
        attributes = [
            SearchAttributePair(contract.AGENT_NAME, agent),
            SearchAttributePair(contract.AGENT_STATUS, RunStatus.RUNNING.value),
        ]
        attributes += [SearchAttributePair(contract.AGENT_USER, user)] if user else []
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
                memo={
                    "request_id": request.request_id,
                    "user": user,
                    "tenant": tenant_id,
                    INPUT_HASH: input_hash(request.input),
                },
                static_summary=f"{agent}: {preview}",
                static_details=(
                    f"agent **{agent}**, user {user or '-'}, tenant {tenant_id or '-'}, "
                    f"request {request.request_id}"
                ),
            )
        except WorkflowAlreadyStartedError:
            pass  # the same request id already ran: that run is the answer (idempotent start)
        except RPCError as err:
            raise OpsreadyError(f"cannot start {run_id}: {err.message}") from None
        if request_id is not None:  # only a caller's own id can have been used before
            await self._check_same_input(run_id, request)
        return run_id

    async def _check_same_input(self, run_id: str, request: AgentRunRequest) -> None:
        description = await self._describe(run_id)
        recorded = (await description.memo()).get(INPUT_HASH)
        if recorded is not None and recorded != input_hash(request.input):
            raise RequestIdReusedError(
                f"request id {request.request_id!r} already started {run_id} with a different "
                "text; use a new request id (the same id and text return that run)"
            )

    def _check_agent(self, agent: str) -> None:
        """Refuse unknown agents early when the definitions are here; a starter without
        them (another machine) learns it from the run, which fails with the same reason."""
        agents_dir = self.settings.agents_dir
        if not agents_dir.is_dir() or (agents_dir / f"{agent}.toml").is_file():
            return
        raise unknown_agent(agent, agents_dir)

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

    async def pending_calls(self, run_id: str) -> list[PendingCall]:
        """The model and tool calls the run waits on right now, with their attempt number
        and last error while Temporal retries them (no worker needed)."""
        return pending_calls(await self._describe(run_id))

    async def wait_for_status(
        self, run_id: str, *statuses: RunStatus, timeout: float = 60.0, every: float = 0.2
    ) -> AgentRunState:
        """Poll the run until its status is one of `statuses`; its state then. Raises
        RunEndedError if it ends in another status, TimeoutError after `timeout` seconds."""
        if not statuses:
            raise ValueError("wait_for_status needs at least one status")
        try:
            async with asyncio.timeout(timeout):
                while True:
                    state = await self.state(run_id)
                    if state.status in statuses:
                        return state
                    if state.status.is_terminal:
                        raise RunEndedError(
                            f"{run_id} ended {state.status.value} "
                            f"({state.reason or 'no reason given'}) before it was "
                            f"{' or '.join(s.value for s in statuses)}"
                        )
                    await asyncio.sleep(every)
        except TimeoutError:
            wanted = " or ".join(s.value for s in statuses)
            raise TimeoutError(f"{run_id} was not {wanted} within {timeout:g}s") from None

    async def wait_for_approval(self, run_id: str, *, timeout: float = 60.0) -> PendingApproval:
        """Wait until the run asks for an approval; the (first) pending request, whose
        `request_id`, tool, arguments and reason say what to decide."""
        state = await self.wait_for_status(run_id, RunStatus.AWAITING_APPROVAL, timeout=timeout)
        return state.pending_approvals[0]

    async def result(self, run_id: str) -> AgentRunResult:
        """Wait for the run to end (following continue-as-new) and return its result, also
        when Temporal closed it Failed or Canceled (see `run_result`)."""
        await self._describe(run_id)
        handle = self.temporal.get_workflow_handle(run_id, result_type=AgentRunResult)
        try:
            return await run_result(handle, self.temporal.data_converter)
        except WorkflowFailureError as err:
            raise OpsreadyError(f"{run_id} failed: {redact_text(str(err.cause or err))}") from None

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
        runs = await self._list(query, limit)
        agents_dir = self.settings.agents_dir
        # No runs of an agent nobody defined is a typo, not news ("no runs").
        if not runs and agent and agents_dir.is_dir() and agent not in known_agents(agents_dir):
            raise unknown_agent(agent, agents_dir)
        return runs

    async def _list(self, query: str, limit: int) -> list[RunSummary]:
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
        wait_seconds: float = ACT_TIMEOUT_SECONDS,
    ) -> AgentRunState:
        """Send a decision through the `decide` update: refused decisions raise, accepted
        ones return the state after the workflow acted on them. When no worker of the run's
        build takes it within `wait_seconds`, NoWorkerError says so and what became of it.

        A decision is never sent to a run no live worker can take (it would wait at the
        server and could act much later), so the run is described first; the description
        and the task queue's pollers are read at once, one round trip before the update
        (docs/decisions.md, "Approvals: one round trip before the update")."""
        try:
            decision = ApprovalDecision(
                request_id=request_id, approved=approved, approver=approver, comment=comment
            )
        except ValidationError as err:
            raise OpsreadyError(f"invalid decision: {one_line(err)}") from None
        placement, is_served = await self._served_placement(run_id)
        if not is_served:
            raise NoWorkerError(
                f"no worker serves {run_id} ({placement.where()}): the decision was not sent; "
                f"start one with `{placement.worker_command()}`, then decide again"
            )
        try:
            return await self._update_within(run_id, Update.DECIDE, decision, wait_seconds)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise NoWorkerError(
                f"no worker took the decision on {run_id} within {wait_seconds:g}s "
                f"({placement.where()}): it is not in the run's history, and takes effect "
                "only if a worker picks the run up while the server still holds it; check "
                f"`opsready status {run_id}` before deciding again; start a worker with "
                f"`{placement.worker_command()}`"
            ) from None
        except WorkflowUpdateFailedError as err:
            reason = err.cause.message if hasattr(err.cause, "message") else str(err.cause)
            raise NotAwaitingApprovalError(f"{run_id}: {reason}") from None
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:  # it ended since it was described
                raise RunEndedError(f"{run_id} has already ended") from None
            raise OpsreadyError(f"cannot send the decision to {run_id}: {err.message}") from None

    async def halt(
        self, run_id: str, *, reason: str, by: str, wait_seconds: float = ACT_TIMEOUT_SECONDS
    ) -> AgentRunState:
        """Stop the run at once (also while it waits for an approval or runs a tool)
        through the `halt` update: the answer is the run's state once it has halted (or
        ended otherwise meanwhile); a run that has already ended is refused. When no worker
        of the run's build answers within `wait_seconds`, the halt goes in as the `halt`
        signal instead (kept in the run's history; it acts when a worker takes the run) and
        NoWorkerError says so: stopping is always safe to leave pending."""
        try:
            request = HaltRequest(reason=reason, by=by)
        except ValidationError as err:
            raise OpsreadyError(f"invalid halt: {one_line(err)}") from None
        placement, is_served = await self._served_placement(run_id)
        pending = (
            f"the halt is recorded in {run_id}'s history and acts when a worker takes the "
            f"run; start one with `{placement.worker_command()}`"
        )
        if not is_served:
            await self._signal_halt(run_id, request)
            raise NoWorkerError(f"no worker serves {run_id} ({placement.where()}): {pending}")
        try:
            return await self._update_within(run_id, Update.HALT, request, wait_seconds)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            await self._signal_halt(run_id, request)
            raise NoWorkerError(
                f"no worker answered the halt of {run_id} within {wait_seconds:g}s "
                f"({placement.where()}): {pending}"
            ) from None
        except WorkflowUpdateFailedError as err:
            reason_ = err.cause.message if hasattr(err.cause, "message") else str(err.cause)
            raise RunEndedError(f"{run_id}: {reason_}") from None
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise RunEndedError(f"{run_id} has already ended") from None
            raise OpsreadyError(f"cannot halt {run_id}: {err.message}") from None

    async def _update_within(
        self, run_id: str, update: str, request: BaseModel, wait_seconds: float
    ) -> AgentRunState:
        """The run's state as the update answers it; TimeoutError (or the SDK's RPC timeout)
        when no worker answers within `wait_seconds`."""
        async with asyncio.timeout(wait_seconds):
            state: AgentRunState = await self._handle(run_id).execute_update(
                update,
                request,
                result_type=AgentRunState,
                rpc_timeout=timedelta(seconds=wait_seconds),
            )
        return state

    async def _signal_halt(self, run_id: str, request: HaltRequest) -> None:
        try:
            await self._handle(run_id).signal(Signal.HALT, request)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise RunEndedError(f"{run_id} has already ended") from None
            raise OpsreadyError(f"cannot halt {run_id}: {err.message}") from None

    async def _served_placement(self, run_id: str) -> tuple[Placement, bool]:
        """The open run's placement, and whether a live worker can take its tasks: its
        description and the pollers of this client's task queue are read at once (the
        run's own queue's after, when it is another)."""
        queue = self.settings.task_queue
        placement, pollers = await asyncio.gather(
            self._open_placement(run_id), workflow_pollers(self.temporal, queue)
        )
        if placement.task_queue != queue:
            pollers = await workflow_pollers(self.temporal, placement.task_queue)
        return placement, serves(placement, pollers)

    async def _open_placement(self, run_id: str) -> Placement:
        description = await self._describe(run_id)
        require_running(description.status, run_id)
        return placement_of(description)
