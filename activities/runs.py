"""A halted run's own cancellation request (`opsready.run.close_halted`).

Only a requested cancellation closes a workflow Canceled, and workflow code cannot ask
for its own (a workflow that cancels itself as an external workflow is refused), so the
run asks through this activity, with the worker's own client. The activity's input keeps
the run's final result in history, where `opsready.client` reads it back.
"""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from workflows.contract import Activity
from workflows.payloads import CloseHaltedInput

log = structlog.get_logger("opsready.runs")


@activity.defn(name=Activity.CLOSE_HALTED)
async def close_halted(request: CloseHaltedInput) -> None:
    if not request.request_cancel:
        return  # a cancellation request halted it: the input alone is the record
    handle = activity.client().get_workflow_handle(request.workflow_id, run_id=request.run_id)
    try:
        await handle.cancel(reason=request.reason)
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return  # closed meanwhile (terminated): nothing left to cancel
        raise
    log.info("halted run asked to close as cancelled", run_id=request.workflow_id)
