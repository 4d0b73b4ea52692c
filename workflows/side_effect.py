"""`SideEffect`: the record of one write or destructive tool call, shared by every worker
host (the `temporal` side-effect ledger).

The tool activity asks `begin` before it calls the tool (the intent: an attempt began)
and `complete` after (the result). A retry on any host gets the stored result instead of
acting again; a retry after an attempt that never completed learns that it is resuming
one. The record stays open an hour after its result (retries come within minutes), then
ends with the result, which `begin` still finds by the workflow's id. Deterministic.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from workflows.contract import SIDE_EFFECT_WORKFLOW, Query, Update
from workflows.effect_types import EffectResult, EffectStart, EffectStatus

LINGER = timedelta(hours=1)


@workflow.defn(name=SIDE_EFFECT_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class SideEffectWorkflow:
    @workflow.init
    def __init__(self, start: EffectStart) -> None:
        self._status = EffectStatus(key=start.key, tool=start.tool)

    @workflow.query(name=Query.STATE)
    def state(self) -> EffectStatus:
        return self._status

    @workflow.update(name=Update.EFFECT_BEGIN)
    def begin(self) -> EffectStatus:
        status = self._status
        if status.result is None:
            status.attempts += 1
            status.history.append(workflow.now())
            status.began_at = status.began_at or workflow.now()
        return status

    @workflow.update(name=Update.EFFECT_COMPLETE)
    def complete(self, done: EffectResult) -> EffectStatus:
        if self._status.result is None:  # the first result stands; a late twin changes nothing
            self._status.result = done.result
            self._status.completed_at = workflow.now()
        return self._status

    @workflow.run
    async def run(self, start: EffectStart) -> EffectStatus:
        await workflow.wait_condition(lambda: self._status.result is not None)
        await workflow.sleep(LINGER)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status
