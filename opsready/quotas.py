"""Operators' view of the quota ledgers (`opsready quota`): list them, show one, set its
limits, reset its spend. A ledger is a `QuotaLedger` workflow per scope on the workers'
task queue; `set` and `reset` create it when it does not exist yet (update-with-start)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from opsready.entities import update_entity
from opsready.errors import OpsreadyError, RunNotFoundError, one_line
from workflows.contract import QUOTA_LEDGER_WORKFLOW, Query, Update, quota_ledger_id
from workflows.quota_types import (
    LedgerView,
    QuotaLedgerInput,
    QuotaLimits,
    QuotaReset,
    QuotaScope,
    QuotaScopeKind,
)

QUERY_TIMEOUT = timedelta(seconds=10)


def parse_scope(text: str) -> QuotaScope:
    """`tenant:acme`, `user:u-1` or `agent:support-triage`."""
    kind, _, scope_id = text.partition(":")
    kinds = ", ".join(k.value for k in QuotaScopeKind)
    if kind not in {k.value for k in QuotaScopeKind} or not scope_id:
        raise OpsreadyError(f"scope {text!r}: write KIND:ID with KIND one of {kinds}")
    try:
        return QuotaScope(kind=QuotaScopeKind(kind), id=scope_id)
    except ValidationError as err:
        raise OpsreadyError(f"scope {text!r}: {one_line(err)}") from None


def scope_of(workflow_id: str, task_queue: str) -> QuotaScope | None:
    """The scope a ledger's workflow id names (None: another queue's ledger, or none)."""
    prefix = quota_ledger_id(task_queue, "", "")[:-1]  # `quota:<queue>:`
    if not workflow_id.startswith(prefix):
        return None
    kind, _, scope_id = workflow_id.removeprefix(prefix).partition(":")
    try:
        return QuotaScope(kind=QuotaScopeKind(kind), id=scope_id)
    except (ValueError, ValidationError):
        return None


async def ledger_view(client: Client, task_queue: str, scope: QuotaScope) -> LedgerView:
    handle = client.get_workflow_handle(quota_ledger_id(task_queue, scope.kind.value, scope.id))
    try:
        view: LedgerView = await handle.query(
            Query.STATE, result_type=LedgerView, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise RunNotFoundError(
                f"no quota ledger for {scope.label()} on task queue {task_queue} (no run has "
                "counted against it and no limits were set)"
            ) from None
        raise OpsreadyError(f"cannot read the ledger of {scope.label()}: {err.message}") from None
    except WorkflowQueryFailedError as err:
        raise OpsreadyError(f"the ledger of {scope.label()} did not answer: {err}") from None
    return view


async def list_ledgers(client: Client, task_queue: str, limit: int = 200) -> list[QuotaScope]:
    query = f"WorkflowType = '{QUOTA_LEDGER_WORKFLOW}' AND ExecutionStatus = 'Running'"
    scopes = []
    try:
        async for execution in client.list_workflows(query, limit=limit):
            scope = scope_of(execution.id, task_queue)
            if scope is not None:
                scopes.append(scope)
    except RPCError as err:
        raise OpsreadyError(f"cannot list quota ledgers: {err.message}") from None
    return sorted(scopes, key=lambda s: (s.kind.value, s.id))


async def set_limits(
    client: Client, task_queue: str, scope: QuotaScope, limits: QuotaLimits
) -> LedgerView:
    return await _update(client, task_queue, scope, Update.QUOTA_SET_LIMITS, limits)


async def reset(
    client: Client, task_queue: str, scope: QuotaScope, *, by: str, clear_limits: bool
) -> LedgerView:
    request = QuotaReset(by=by, clear_limits=clear_limits)
    return await _update(client, task_queue, scope, Update.QUOTA_RESET, request)


async def _update(
    client: Client, task_queue: str, scope: QuotaScope, update: str, arg: object
) -> LedgerView:
    try:
        return await update_entity(
            client,
            workflow=QUOTA_LEDGER_WORKFLOW,
            workflow_id=quota_ledger_id(task_queue, scope.kind.value, scope.id),
            task_queue=task_queue,
            start=QuotaLedgerInput(scope=scope),
            update=update,
            arg=arg,
            result_type=LedgerView,
            summary=f"quota ledger: {scope.label()}",
        )
    except RPCError as err:
        raise OpsreadyError(f"cannot change the ledger of {scope.label()}: {err.message}") from None
