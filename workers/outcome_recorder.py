"""Records every finished `AgentRun` in the worker's outcome store: the run-level metrics
and the row SLO and canary code read. A run (with the `lean-run` patch) leaves its outcome
in its last memo upsert; this worker interceptor hands it over when the run returns (or
closes Failed or Canceled, by raising), in the task that closes it, never while replaying
(as `workflow.logger` stays silent), so no activity and no history event is spent on it. The memo stays the durable copy: a worker
that dies before its writer thread has written a row loses the row, not the outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities.outcomes import OutcomeStore
from workflows.contract import AGENT_RUN_WORKFLOW, OUTCOME_MEMO
from workflows.payloads import RunOutcome

_EXTERN = "opsready_record_outcome"


class _HandOver(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        try:
            result = await self.next.execute_workflow(input)
        except (FailureError, asyncio.CancelledError):
            # Failed, timed-out and over-budget runs close Failed and halted ones Canceled
            # (workflows/run_end.py): they raise, their outcome in the memo all the same.
            # (Continue-as-new raises past this: the run goes on in the next one.)
            _hand_over()
            raise
        _hand_over()
        return result


def _hand_over() -> None:
    if workflow.info().workflow_type != AGENT_RUN_WORKFLOW or workflow.unsafe.is_replaying():
        return
    outcome = workflow.memo_value(OUTCOME_MEMO, None)
    if outcome is not None:  # runs without the patch record it by an activity
        workflow.extern_functions()[_EXTERN](outcome)


class OutcomeRecorder(Interceptor):
    def __init__(self, store: OutcomeStore) -> None:
        self._store = store

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        # Called outside any workflow (the sandboxed ones too reach it by this name).
        input.unsafe_extern_functions[_EXTERN] = self._record
        return _HandOver

    def _record(self, outcome: dict[str, Any]) -> None:
        self._store.record_finished(RunOutcome.model_validate(outcome))


def outcome_store_of(activities: Sequence[Callable[..., Any]]) -> OutcomeStore | None:
    """The store the worker's `record_outcome` activity writes to, if it registers one."""
    for function in activities:
        owner = getattr(function, "__self__", None)
        if isinstance(owner, OutcomeStore):
            return owner
    return None
