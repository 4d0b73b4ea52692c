"""The shared side-effect ledger (`OPSREADY_LEDGER=temporal`) on the dev server: two worker
hosts, each with its own local files, run attempts of the same write-tool call. The first
crashes between the side effect and the ledger write; the second knows it resumes an
interrupted attempt and passes the same key downstream (one payment); a later retry on
either host gets the recorded result without calling the tool."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.tools.activity import ToolActivities
from activities.tools.effects import TemporalEffectLedger
from activities.tools.ledger import Ledger
from activities.tools.registry import Tool, ToolContext, ToolRegistry
from opsready.settings import Settings
from workers.app import build_worker
from workflows.effect_types import EffectStatus
from workflows.payloads import RunContext, ToolCallInput
from workflows.types import RiskTier

pytestmark = pytest.mark.integration


class PayArgs(BaseModel):
    amount_usd: float


class Payments:
    """The downstream system: it takes the idempotency key (as the tool-author contract
    asks), so a second request with the same key is the same payment."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.bodies: list[tuple[str, bool]] = []  # (key, is_resumed) per tool body run
        self.crash_next = True

    async def pay(self, args: PayArgs, ctx: ToolContext) -> dict[str, Any]:
        self.bodies.append((ctx.idempotency_key, ctx.is_resumed))
        payment = await ctx.ledger.refund_once(
            ctx.idempotency_key, f"P-{len(self.bodies)}", "A-1001", args.amount_usd, "pay"
        )
        if self.crash_next:  # the effect is made; the worker dies before the ledger write
            self.crash_next = False
            raise RuntimeError("worker lost between the payment and the ledger write")
        return payment


def host(payments: Payments, queue: str) -> ToolActivities:
    """One worker host: the shared Temporal ledger (its own SQLite one is not used)."""
    tool = Tool("pay", "Pay.", PayArgs, RiskTier.WRITE, payments.pay)
    return ToolActivities(
        ToolRegistry([tool]),
        payments.ledger,  # the downstream stand-in both hosts reach
        effects=TemporalEffectLedger(queue),
    )


def call(key: str) -> ToolCallInput:
    return ToolCallInput(
        run_id="run-1",
        agent="payer",
        step=1,
        call_id="c1",
        tool="pay",
        arguments={"amount_usd": 12.5},
        idempotency_key=key,
        context=RunContext(user_id="customer-17"),
    )


async def test_two_hosts_share_the_ledger_and_a_crash_after_the_effect_pays_once(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    queue, key = f"effects-{uuid.uuid4().hex[:8]}", f"run-{uuid.uuid4().hex[:6]}:1:c1"
    settings = Settings(data_dir=tmp_path / "data", task_queue=queue, worker_versioning=False)
    payments = Payments(Ledger(tmp_path / "payments.sqlite"))
    first, second = host(payments, queue), host(payments, queue)
    env = ActivityEnvironment(client=dev_env.client)
    async with build_worker(dev_env.client, settings, activities=[]):  # runs SideEffect
        with pytest.raises(RuntimeError, match="worker lost"):
            await env.run(first.run_tool, call(key))
        resumed = await env.run(second.run_tool, call(key))
        again = await env.run(first.run_tool, call(key))
        record = await dev_env.client.get_workflow_handle(f"effect:{queue}:{key}").query(
            "state", result_type=EffectStatus
        )

    assert resumed.ok and not resumed.was_replayed
    assert again.was_replayed and again.output == resumed.output
    assert payments.bodies == [(key, False), (key, True)]  # the second knew it resumed
    assert [p["idempotency_key"] for p in await payments.ledger.refunds()] == [key]  # paid once
    assert record.attempts == 2 and record.result is not None
