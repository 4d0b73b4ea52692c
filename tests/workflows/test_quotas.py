"""Spend quotas across runs on the time-skipping server: reservations of failed and halted
runs are released, the open-runs cap refuses at start, and an over-quota call can wait for
a human. (Fifty concurrent runs and a killed worker: tests/integration/test_quotas.py.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from opsready.quotas import ledger_view
from opsready.runs import run_result
from opsready.setup import ensure_search_attributes
from tests.conftest import TEST_SERVER_BIN
from tests.fakes.scripted import answer, calls
from tests.workflows.conftest import Harness, open_harness
from workflows.contract import Signal, Update
from workflows.quota_types import LedgerView, QuotaScope, QuotaScopeKind
from workflows.types import (
    AgentRunState,
    ApprovalDecision,
    HaltRequest,
    RunStatus,
    StopReason,
)


async def _ledger(harness: Harness, kind: QuotaScopeKind, scope_id: str) -> LedgerView:
    return await ledger_view(harness.client, harness.task_queue, QuotaScope(kind=kind, id=scope_id))


@pytest.fixture
async def own_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """A time-skipping server of its own, for a run halted while its model call is in
    flight: the run closes Canceled before the cancelled activity ends, and the test server
    keeps that activity pending on the closed run (its describe says CANCEL_REQUESTED after
    the worker completed it), which stops the server's clock for every later test."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=TEST_SERVER_BIN, data_converter=pydantic_data_converter
    )
    try:
        await ensure_search_attributes(env.client)
        async with open_harness(env, tmp_path) as harness:
            yield harness
    finally:
        await env.shutdown()


async def test_failed_and_halted_runs_release_their_reservations(own_harness: Harness) -> None:
    harness = own_harness
    tenant = f"acme-{uuid.uuid4().hex[:6]}"
    # Failed: the model rejects every call, so the step's reservation is given back.
    failing = await harness.start("tester-quota", "no script for this", tenant_id=tenant)
    assert (await run_result(failing)).status is RunStatus.FAILED
    # Halted while its model call is in flight (the reservation is held at that moment).
    text = harness.script("hang", lambda _: answer("late"))
    halted = await harness.start("tester-gated", text, tenant_id=tenant)
    await asyncio.wait_for(harness.gated.entered.wait(), 20)
    held = await _ledger(harness, QuotaScopeKind.TENANT, tenant)
    assert len(held.state.reservations) == 1 and held.state.open_runs == [halted.id]
    await halted.signal(Signal.HALT, HaltRequest(reason="stop", by="oncall"))
    assert (await run_result(halted)).status is RunStatus.HALTED
    harness.gated.release()

    ledger = (await _ledger(harness, QuotaScopeKind.TENANT, tenant)).state
    assert ledger.reservations == [] and ledger.open_runs == []
    assert ledger.spent_day_usd == 0.0  # neither run paid for a model call


async def test_open_runs_cap_refuses_a_second_run_at_start(harness: Harness) -> None:
    user = f"u-{uuid.uuid4().hex[:6]}"
    close = harness.script(
        "close", lambda r: calls(r.step, ("close_account", {"account_id": "acct-1"}))
    )
    first = await harness.start("tester-open-runs", close, user_id=user)
    await harness.wait_for_status(first, "awaiting_approval")

    second = await run_result(await harness.start("tester-open-runs", close, user_id=user))
    assert (second.status, second.stop_reason) == (
        RunStatus.BUDGET_EXCEEDED,
        StopReason.QUOTA_EXCEEDED,
    )
    assert (second.reason or "").startswith(
        f"refused: quota exceeded: user {user}: 1 of 1 runs open"
    )
    assert second.usage.cost_usd == 0 and second.steps == 1

    await first.signal(Signal.HALT, HaltRequest(reason="done", by="oncall"))
    await run_result(first)
    third = await harness.start("tester-open-runs", close, user_id=user)
    await harness.wait_for_status(third, "awaiting_approval")  # the slot is free again
    await third.signal(Signal.HALT, HaltRequest(reason="done", by="oncall"))
    await run_result(third)


async def test_an_over_quota_call_waits_for_a_human_when_the_agent_says_so(
    harness: Harness,
) -> None:
    tenant = f"acme-{uuid.uuid4().hex[:6]}"
    text = harness.script("over", lambda _: answer("done"))
    handle = await harness.start("tester-quota-approval", text, tenant_id=tenant)
    state = await harness.wait_for_status(handle, "awaiting_approval")
    pending = state.pending_approvals[0]
    assert pending.tool == "quota" and "quota exceeded: tenant" in pending.reason
    await handle.execute_update(
        Update.DECIDE, ApprovalDecision(approved=True, approver="alice"), result_type=AgentRunState
    )
    result = await run_result(handle)
    assert result.status is RunStatus.COMPLETED and result.approvals[0].tool == "quota"
    ledger = (await _ledger(harness, QuotaScopeKind.TENANT, tenant)).state
    assert ledger.spent_day_usd == result.usage.cost_usd  # spent over the limit, and counted

    rejected = await harness.start("tester-quota-approval", text, tenant_id=tenant)
    await harness.wait_for_status(rejected, "awaiting_approval")
    await rejected.signal(
        Signal.APPROVAL_DECISION, ApprovalDecision(approved=False, approver="bob")
    )
    ended = await run_result(rejected)
    assert (ended.status, ended.stop_reason) == (
        RunStatus.BUDGET_EXCEEDED,
        StopReason.QUOTA_EXCEEDED,
    )
    assert "not approved (rejected by bob)" in (ended.reason or "")


async def test_a_run_halted_by_temporal_cancellation_frees_its_open_run_slot(
    harness: Harness,
) -> None:
    # The UI's "Request Cancellation" halts the run; its quota is settled all the same,
    # shielded from the cancellation, before it closes Canceled.
    user = f"u-{uuid.uuid4().hex[:6]}"
    close = harness.script(
        "close", lambda r: calls(r.step, ("close_account", {"account_id": "acct-1"}))
    )
    first = await harness.start("tester-open-runs", close, user_id=user)
    await harness.wait_for_status(first, "awaiting_approval")
    held = (await _ledger(harness, QuotaScopeKind.USER, user)).state
    assert held.open_runs == [first.id]

    await first.cancel()
    result = await run_result(first)
    assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.HALT)
    assert (await first.describe()).status is WorkflowExecutionStatus.CANCELED
    assert (await _ledger(harness, QuotaScopeKind.USER, user)).state.open_runs == []
