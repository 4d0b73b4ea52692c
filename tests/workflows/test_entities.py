"""The entity workflows on the time-skipping server: a quota ledger keeps its books across
continue-as-new and takes an operator's limits and resets; a circuit breaker shared through
Temporal opens on reported failures, hands out one probe, and closes on its success."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from opsready import quotas
from opsready.entities import update_entity
from tests.workflows.conftest import Harness
from workflows import quota_ledger
from workflows.breaker_types import (
    BreakerConfig,
    BreakerInput,
    BreakerStatus,
    BreakerView,
    Decision,
    OutcomeBatch,
)
from workflows.contract import (
    CIRCUIT_BREAKER_WORKFLOW,
    QUOTA_LEDGER_WORKFLOW,
    EntitySignal,
    Query,
    Update,
    breaker_id,
    quota_ledger_id,
)
from workflows.quota_types import (
    LedgerReply,
    LedgerRequest,
    QuotaLedgerInput,
    QuotaLimits,
    QuotaScope,
    QuotaScopeKind,
)


async def _apply(
    client: Client, queue: str, scope: QuotaScope, request: LedgerRequest
) -> LedgerReply:
    return await update_entity(
        client,
        workflow=QUOTA_LEDGER_WORKFLOW,
        workflow_id=quota_ledger_id(queue, scope.kind.value, scope.id),
        task_queue=queue,
        start=QuotaLedgerInput(scope=scope),
        update=Update.QUOTA_APPLY,
        arg=request,
        result_type=LedgerReply,
    )


async def test_a_ledger_keeps_its_books_across_continue_as_new(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quota_ledger, "CONTINUE_AS_NEW_AFTER_EVENTS", 25)
    scope = QuotaScope(kind=QuotaScopeKind.TENANT, id=f"t-{uuid.uuid4().hex[:6]}")
    limits = QuotaLimits(per_day_usd=1.0)
    for i in range(12):
        await _apply(
            harness.client,
            harness.task_queue,
            scope,
            LedgerRequest(
                run_id=f"run-{i}",
                limits=limits,
                commit_key=f"k{i}",
                commit_usd=0.01,
                close_run=True,
            ),
        )
    held = await _apply(
        harness.client,
        harness.task_queue,
        scope,
        LedgerRequest(
            run_id="run-x", limits=limits, open_run=True, reserve_key="kx", reserve_usd=0.5
        ),
    )
    assert held.reservation is not None
    # A retried commit after the carry-over counts nothing.
    await _apply(
        harness.client,
        harness.task_queue,
        scope,
        LedgerRequest(run_id="run-0", commit_key="k0", commit_usd=0.01),
    )

    handle = harness.client.get_workflow_handle(
        quota_ledger_id(harness.task_queue, "tenant", scope.id)
    )
    events = [e async for e in handle.fetch_history_events()]  # of its latest run
    started = events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id, "the ledger never continued as new"
    view = await quotas.ledger_view(harness.client, harness.task_queue, scope)
    assert round(view.state.spent_day_usd, 6) == 0.12
    assert [r.key for r in view.state.reservations] == ["kx"] and view.state.open_runs == ["run-x"]


async def test_an_operators_limits_win_and_a_reset_clears_todays_spend(harness: Harness) -> None:
    scope = QuotaScope(kind=QuotaScopeKind.USER, id=f"u-{uuid.uuid4().hex[:6]}")
    queue = harness.task_queue
    view = await quotas.set_limits(harness.client, queue, scope, QuotaLimits(per_day_usd=0.05))
    assert view.effective_limits.per_day_usd == 0.05
    agent_limits = QuotaLimits(per_day_usd=10.0, max_open_runs=5)
    await _apply(
        harness.client,
        queue,
        scope,
        LedgerRequest(run_id="r1", limits=agent_limits, commit_key="c1", commit_usd=0.04),
    )
    refused = await _apply(
        harness.client,
        queue,
        scope,
        LedgerRequest(run_id="r2", limits=agent_limits, reserve_key="c2", reserve_usd=0.02),
    )
    assert refused.refusal is not None and refused.refusal.limit == "per_day_usd"
    assert f"user {scope.id}: $0.04 of $0.05 spent today" in refused.refusal.message
    view = await quotas.reset(harness.client, queue, scope, by="oncall", clear_limits=True)
    assert view.state.spent_day_usd == 0 and view.operator_limits == QuotaLimits()
    granted = await _apply(
        harness.client,
        queue,
        scope,
        LedgerRequest(run_id="r2", limits=agent_limits, reserve_key="c2", reserve_usd=0.02),
    )
    assert granted.refusal is None and granted.reservation is not None


async def test_a_shared_breaker_opens_hands_out_one_probe_and_closes(harness: Harness) -> None:
    name = f"model:p{uuid.uuid4().hex[:6]}"
    config = BreakerConfig(min_calls=3, failure_rate=0.5, open_s=30, half_open_probes=1)
    workflow_id = breaker_id(harness.task_queue, name)
    await harness.client.start_workflow(
        CIRCUIT_BREAKER_WORKFLOW,
        BreakerInput(name=name, config=config),
        id=workflow_id,
        task_queue=harness.task_queue,
        start_signal=EntitySignal.BREAKER_RECORD,
        start_signal_args=[OutcomeBatch(ok=1, failures=3, last_error="500 from upstream")],
    )
    handle = harness.client.get_workflow_handle(workflow_id)
    view = await handle.query(Query.STATE, result_type=BreakerView)
    assert view.state.status is BreakerStatus.OPEN
    assert "2 of 3 calls failed" in (view.state.last_reason or "")  # min_calls reached

    async def acquire() -> Decision:
        return await update_entity(
            harness.client,
            workflow=CIRCUIT_BREAKER_WORKFLOW,
            workflow_id=workflow_id,
            task_queue=harness.task_queue,
            start=BreakerInput(name=name, config=config),
            update=Update.BREAKER_ACQUIRE,
            result_type=Decision,
        )

    assert not (await acquire()).allowed  # still open
    await harness.env.sleep(31)  # test-server time: past the open period
    probe, second = await acquire(), await acquire()
    assert probe.allowed and probe.state is BreakerStatus.HALF_OPEN and not second.allowed
    await handle.signal(EntitySignal.BREAKER_RECORD, OutcomeBatch(ok=1))
    view = await handle.query(Query.STATE, result_type=BreakerView)
    assert view.state.status is BreakerStatus.CLOSED
