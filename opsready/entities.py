"""Entity workflows (quota ledgers, circuit breakers, side-effect records): reach one by id,
starting it when it does not exist yet, in one call.

`update_entity` is Temporal's update-with-start: the entity is created by whoever needs it
first (a run's activity, a worker, an operator's command), so nothing has to set it up.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

T = TypeVar("T")
_NO_ARG: Any = object()


async def update_entity(
    client: Client,
    *,
    workflow: str,
    workflow_id: str,
    task_queue: str,
    start: Any,
    update: str,
    arg: Any = _NO_ARG,
    result_type: type[T],
    summary: str | None = None,
    execution_timeout: timedelta | None = None,
) -> T:
    """Send `update` (with `arg`, if it takes one) to the entity `workflow_id`, starting it
    with `start` if needed."""
    operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        workflow,
        start,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=summary,
        execution_timeout=execution_timeout,
    )
    args = [] if arg is _NO_ARG else [arg]
    result: T = await client.execute_update_with_start_workflow(
        update, args=args, start_workflow_operation=operation, result_type=result_type
    )
    return result
