"""`QuotaLedger`: the spend ledger of one quota scope (a user, a tenant or an agent), as a
long-lived entity workflow every worker shares.

Runs reach it through the quota activity (the `apply` update: commit, release, open,
reserve, close, each idempotent); operators through `opsready quota` (`set_limits`,
`reset`, the `state` query). Reservations older than an hour belong to runs that died
and are released at the next update. It continues as new before its history grows
large, carrying the book over. Deterministic (workflow code): `QuotaBook` decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior

from workflows.contract import QUOTA_LEDGER_WORKFLOW, Query, Update
from workflows.quota_book import QuotaBook
from workflows.quota_types import (
    LedgerReply,
    LedgerRequest,
    LedgerView,
    QuotaLedgerInput,
    QuotaLimits,
    QuotaReset,
    Refusal,
    Reservation,
    usd,
)

# A model call holds its reservation for seconds, a few minutes with retries: one older
# than this was left by a run that died without closing.
STALE_AFTER = timedelta(hours=1)
# Continue as new well before Temporal's own warning; each update adds a few events.
CONTINUE_AS_NEW_AFTER_EVENTS = 2_000


def effective_limits(run: QuotaLimits, operator: QuotaLimits) -> QuotaLimits:
    """The run's limits with the operator's, field by field, where the operator set one."""
    set_by_operator = operator.model_dump(exclude_none=True)
    return run.model_copy(update=set_by_operator)


@workflow.defn(name=QUOTA_LEDGER_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class QuotaLedgerWorkflow:
    @workflow.init
    def __init__(self, start: QuotaLedgerInput) -> None:
        self._book = QuotaBook.restore(start.state) if start.state else QuotaBook(start.scope)
        self._operator = start.operator_limits
        self._updated_at: datetime | None = None

    @workflow.query(name=Query.STATE)
    def state(self) -> LedgerView:
        return LedgerView(
            state=self._book.snapshot(),
            operator_limits=self._operator,
            effective_limits=self._book.limits,
            updated_at=self._updated_at,
        )

    @workflow.update(name=Update.QUOTA_APPLY)
    def apply(self, request: LedgerRequest) -> LedgerReply:
        now, book = workflow.now(), self._book
        book.roll(now)
        book.release_stale(now, STALE_AFTER)
        book.set_limits(effective_limits(request.limits, self._operator))
        reply = LedgerReply()
        if request.commit_key is not None:
            book.commit(request.commit_key, request.commit_usd, now, run_id=request.run_id)
        if request.release_key is not None:
            book.release(request.release_key)
        if request.open_run:
            opened = book.open_run(request.run_id)
            if isinstance(opened, Refusal):
                reply.refusal = opened
        if request.reserve_key is not None and reply.refusal is None:
            held = book.reserve(request.reserve_key, request.run_id, request.reserve_usd, now)
            if isinstance(held, Reservation):
                reply.reservation = held
            else:
                reply.refusal = held
        if request.close_run:
            book.close_run(request.run_id)
        self._changed()
        return reply

    @workflow.update(name=Update.QUOTA_SET_LIMITS)
    def set_limits(self, limits: QuotaLimits) -> LedgerView:
        """An operator's limits; they win over every run's own, field by field."""
        self._operator = limits
        self._book.set_limits(effective_limits(self._book.limits, limits))
        workflow.logger.info("quota limits set: %s", limits.model_dump(exclude_none=True))
        self._changed()
        return self.state()

    @workflow.update(name=Update.QUOTA_RESET)
    def reset(self, request: QuotaReset) -> LedgerView:
        """Spend of the current windows back to zero (reservations and open runs stay:
        they are live work); with `clear_limits`, the operator's limits go too."""
        snapshot = self._book.snapshot()
        snapshot.spent_day_usd = snapshot.spent_month_usd = 0.0
        self._book = QuotaBook.restore(snapshot)
        if request.clear_limits:
            self._operator = QuotaLimits()
        workflow.logger.info("quota reset by %s", request.by)
        self._changed()
        return self.state()

    @workflow.run
    async def run(self, start: QuotaLedgerInput) -> None:
        self._changed()
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_length() >= CONTINUE_AS_NEW_AFTER_EVENTS
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            QuotaLedgerInput(
                scope=start.scope, state=self._book.snapshot(), operator_limits=self._operator
            )
        )

    def _changed(self) -> None:
        self._updated_at = workflow.now()
        workflow.set_current_details(details(self.state()))


def details(view: LedgerView) -> str:
    """Markdown for the Temporal UI: spend against each limit, what is held, who runs."""
    state, limits = view.state, view.effective_limits

    def against(spent: float, cap: float | None) -> str:
        return f"{usd(spent)} of {usd(cap)}" if cap is not None else f"{usd(spent)} (no limit)"

    lines = [
        f"**{state.scope.label()}**",
        f"today {against(state.spent_day_usd, limits.per_day_usd)}; "
        f"this month {against(state.spent_month_usd, limits.per_month_usd)}",
        f"reserved {usd(state.reserved_usd)} for {len(state.reservations)} call(s)",
    ]
    cap = limits.max_open_runs
    lines.append(f"open runs {len(state.open_runs)}" + (f" of {cap}" if cap is not None else ""))
    if view.operator_limits != QuotaLimits():
        shown = view.operator_limits.model_dump(exclude_none=True)
        lines.append(f"operator limits: {shown}")
    return "\n\n".join(lines)
