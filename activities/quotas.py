"""The quota activity: one step of a run against every ledger it counts against.

Each ledger is a `QuotaLedger` entity workflow reached by update-with-start. A reserve
that one ledger refuses is released from the ledgers that already granted it, so a run
holds either all of its reservations or none. Every part is idempotent (by key or run
id): a retried activity, after a worker crash, counts nothing twice.
"""

from __future__ import annotations

import structlog
from temporalio import activity

from opsready.entities import update_entity
from workflows.contract import QUOTA_LEDGER_WORKFLOW, Activity, Update, quota_ledger_id
from workflows.control_types import QuotaCall, QuotaCallResult, ScopeQuota
from workflows.quota_types import LedgerReply, LedgerRequest, QuotaLedgerInput

log = structlog.get_logger("opsready.quota")


class QuotaActivities:
    def __init__(self, task_queue: str) -> None:
        self._task_queue = task_queue  # the ledgers run with the workers of this queue

    @activity.defn(name=Activity.QUOTA_APPLY)
    async def apply(self, call: QuotaCall) -> QuotaCallResult:
        granted: list[ScopeQuota] = []
        for scoped in call.scopes:
            reply = await self._send(scoped, self._request(call, scoped))
            if reply.refusal is not None:
                log.info("quota refused", scope=scoped.scope.label(), reason=reply.refusal.message)
                await self._undo(
                    call, granted, is_open_refused=reply.refusal.limit == "max_open_runs"
                )
                return QuotaCallResult(refusal=reply.refusal)
            granted.append(scoped)
        return QuotaCallResult()

    def _request(self, call: QuotaCall, scoped: ScopeQuota) -> LedgerRequest:
        return LedgerRequest(
            run_id=call.run_id,
            limits=scoped.limits,
            commit_key=call.commit.key if call.commit else None,
            commit_usd=call.commit.actual_usd if call.commit else 0.0,
            release_key=call.release,
            open_run=call.open_run,
            reserve_key=call.reserve.key if call.reserve else None,
            reserve_usd=call.reserve.amount_usd if call.reserve else 0.0,
            close_run=call.close_run,
        )

    async def _undo(
        self, call: QuotaCall, granted: list[ScopeQuota], *, is_open_refused: bool
    ) -> None:
        """Give back what the ledgers before the refusing one granted: the reservation,
        and the open-run slot when the run may not open (it ends at once)."""
        for scoped in granted:
            await self._send(
                scoped,
                LedgerRequest(
                    run_id=call.run_id,
                    limits=scoped.limits,
                    release_key=call.reserve.key if call.reserve else None,
                    close_run=call.open_run and is_open_refused,
                ),
            )

    async def _send(self, scoped: ScopeQuota, request: LedgerRequest) -> LedgerReply:
        scope = scoped.scope
        return await update_entity(
            activity.client(),
            workflow=QUOTA_LEDGER_WORKFLOW,
            workflow_id=quota_ledger_id(self._task_queue, scope.kind.value, scope.id),
            task_queue=self._task_queue,
            start=QuotaLedgerInput(scope=scope),
            update=Update.QUOTA_APPLY,
            arg=request,
            result_type=LedgerReply,
            summary=f"quota ledger: {scope.label()}",
        )
