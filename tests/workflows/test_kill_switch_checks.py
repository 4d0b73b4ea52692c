"""Where a run checks its kill switches (the `lean-run` patch): the config activity before
the first model call, the model activity before every call, the tool activity before it
runs a tool, and a check before an approval is asked for a tool. A switch that turns on
mid-run stops the run at the next call (a run with quotas too, its reservation released);
a tool's switch refuses only that tool."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from activities.flags import evaluation_context
from opsready.quotas import ledger_view
from opsready.runs import run_result
from tests.conftest import write_agent
from tests.fakes.scripted import answer, calls
from tests.workflows.conftest import tester_toml as agent_toml
from tests.workflows.test_flags import FlagRig, flag_rig, write_flags
from workflows.contract import Query, Update, kill_switch_key
from workflows.payloads import ChatMessage, ModelCallInput
from workflows.quota_types import QuotaScope, QuotaScopeKind
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalDecision,
    RunStatus,
    StopReason,
)

BIG_REFUND = "My headphones from order A-1002 arrived broken, I want a refund."
TESTER_SWITCH = kill_switch_key(agent="tester")


def switched(key: str, is_on: bool) -> Callable[[dict[str, Any]], None]:
    """A flag-file change that serves `key` on or off (added like the shipped switches)."""

    def change(flags: dict[str, Any]) -> None:
        if key not in flags:
            flags[key] = copy.deepcopy(flags[kill_switch_key()]) | {"key": key, "salt": key}
        flags[key]["fallthrough"] = {"variation": 1 if is_on else 0}

    return change


def turn_on_now(rig: FlagRig, key: str) -> None:
    """Turn a switch on from inside a scripted model call and return once the worker's flag
    client sees it: the next call of the run must find it on. (A script is synchronous; the
    flag client reloads the file on its own thread, so polling here does not stall it.)"""
    write_flags(rig.settings.flags_file, switched(key, True))
    deadline = time.monotonic() + 10
    while rig.flags.evaluate(key, evaluation_context("tester"), False).value is not True:
        assert time.monotonic() < deadline, f"{key} never turned on"
        time.sleep(0.01)


async def test_a_switch_turned_on_mid_run_stops_it_at_the_next_model_call(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(time_env, tmp_path) as rig:
        text = f"say nothing, then try again [{uuid.uuid4().hex[:6]}]"

        def script(request: ModelCallInput) -> ChatMessage:
            turn_on_now(rig, TESTER_SWITCH)
            return answer("")  # an empty answer: the run asks the model again

        rig.scripted.scripts[text] = script
        _, result = await rig.run("tester", text)
        assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.KILL_SWITCH)
        assert (result.reason or "").startswith(f"halted: kill switch {TESTER_SWITCH}")
        # The second call was refused before the model was asked: one step, one request.
        assert result.steps == 1
        assert [r.step for r in rig.scripted.requests if r.messages[1].content == text] == [1]


async def test_a_switch_turned_on_before_a_tool_runs_refuses_the_tool_and_halts(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(time_env, tmp_path) as rig:
        text = f"close the account [{uuid.uuid4().hex[:6]}]"

        def script(request: ModelCallInput) -> ChatMessage:
            turn_on_now(rig, TESTER_SWITCH)
            return calls(1, ("close_account", {"account_id": "acct-9"}))

        rig.scripted.scripts[text] = script
        _, result = await rig.run("tester", text)
        assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.KILL_SWITCH)
        assert [c.decision for c in result.tool_calls] == ["halted"]
        assert await rig.ledger.effects() == []


async def test_nobody_is_asked_to_approve_a_tool_whose_switch_is_on(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(time_env, tmp_path) as rig:
        key = kill_switch_key(tool="refund_order")
        write_flags(rig.settings.flags_file, switched(key, True))
        await rig.until_flag(key, True)
        _, result = await rig.run("support-triage", BIG_REFUND)
        assert result.status is RunStatus.COMPLETED  # answered without the refund
        refund = next(c for c in result.tool_calls if c.tool == "refund_order")
        assert refund.decision == "denied" and key in (refund.error or "")
        assert result.approvals == []
        assert await rig.ledger.refunds() == []


async def test_an_approved_tool_is_refused_when_its_agent_was_killed_meanwhile(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(time_env, tmp_path) as rig:
        handle = await rig.client.start_workflow(
            "AgentRun",
            AgentRunRequest(agent="support-triage", input=BIG_REFUND, user_id="customer-17"),
            id=f"flags-parked-{uuid.uuid4().hex[:8]}",
            task_queue=rig.settings.task_queue,
            result_type=AgentRunResult,
        )
        state = await handle.query(Query.STATE, result_type=AgentRunState)
        while state.status is not RunStatus.AWAITING_APPROVAL:
            state = await handle.query(Query.STATE, result_type=AgentRunState)
        # No flag listener here: the run is still parked when the approval lands.
        key = kill_switch_key(agent="support-triage")
        write_flags(rig.settings.flags_file, switched(key, True))
        await rig.until_flag(key, True)
        decision = ApprovalDecision(approved=True, approver="alice")
        await handle.execute_update(Update.DECIDE, decision, result_type=AgentRunState)
        result = await run_result(handle)  # a halted run closes Canceled
        assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.KILL_SWITCH)
        refund = next(c for c in result.tool_calls if c.tool == "refund_order")
        assert refund.decision == "halted"
        assert await rig.ledger.refunds() == []


async def test_a_switch_turned_on_mid_run_stops_a_quota_run_and_frees_its_reservation(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # The controls on the lean path: the model activity checks the switch before the
    # guardrails, breaker and provider; the refused call spends nothing, and the run's
    # reservations and open-run slot are freed when it ends.
    async with flag_rig(time_env, tmp_path) as rig:
        agent = "tester-user-quota"
        write_agent(
            rig.settings.agents_dir,
            agent,
            agent_toml(agent) + "[quotas.user]\nper_day_usd = 1.0\nmax_open_runs = 2\n",
        )
        text = f"say nothing, then try again [{uuid.uuid4().hex[:6]}]"

        def script(request: ModelCallInput) -> ChatMessage:
            turn_on_now(rig, kill_switch_key(agent=agent))
            return answer("")  # an empty answer: the run asks the model again

        rig.scripted.scripts[text] = script
        user = f"u-{uuid.uuid4().hex[:6]}"
        handle = await rig.client.start_workflow(
            "AgentRun",
            AgentRunRequest(agent=agent, input=text, user_id=user),
            id=f"flags-quota-{uuid.uuid4().hex[:8]}",
            task_queue=rig.settings.task_queue,
            result_type=AgentRunResult,
        )
        result = await run_result(handle)
        assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.KILL_SWITCH)
        assert result.steps == 1
        assert [r.step for r in rig.scripted.requests if r.messages[1].content == text] == [1]
        scope = QuotaScope(kind=QuotaScopeKind.USER, id=user)
        ledger = (await ledger_view(rig.client, rig.settings.task_queue, scope)).state
        assert ledger.reservations == [] and ledger.open_runs == []
        assert ledger.spent_day_usd == result.usage.cost_usd  # the one call that was made
