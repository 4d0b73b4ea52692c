"""AgentRun's loop on the time-skipping server: limits, bad tool calls, continue-as-new."""

from __future__ import annotations

import json

from temporalio.client import WorkflowExecutionStatus

from opsready.runs import run_result
from tests.fakes.scripted import answer, calls, tool_messages
from tests.workflows.conftest import Harness
from workflows.contract import Query
from workflows.payloads import ModelCallInput
from workflows.types import AgentRunState, RunStatus, StopReason


def search_forever(request: ModelCallInput):  # type: ignore[no-untyped-def]
    return calls(request.step, ("search_kb", {"query": f"attempt {request.step}"}))


async def test_max_steps_ends_a_looping_agent(harness: Harness) -> None:
    handle = await harness.start("tester", harness.script("loop", search_forever))
    result = await run_result(handle)
    assert result.status is RunStatus.BUDGET_EXCEEDED
    assert result.stop_reason is StopReason.MAX_STEPS
    assert result.steps == 4
    assert "max_steps reached: 4" in (result.reason or "")
    assert len(result.tool_calls) == 4


async def test_cost_budget_stops_the_run_at_the_call_that_crosses_it(harness: Harness) -> None:
    # scripted/test costs $1 per M input and $2 per M output: 100 + 20 tokens = $0.00014 a call
    handle = await harness.start("tester-cheap", harness.script("spend", search_forever))
    result = await run_result(handle)
    assert result.status is RunStatus.BUDGET_EXCEEDED
    assert result.stop_reason is StopReason.COST_BUDGET
    assert result.steps == 3
    assert result.usage.cost_usd == 0.00042
    assert "cost budget exceeded" in (result.reason or "")
    assert len(result.tool_calls) == 2  # the tools of the crossing call are not run


async def test_token_budget_stops_the_run(harness: Harness) -> None:
    handle = await harness.start("tester-tokens", harness.script("talk", search_forever))
    result = await run_result(handle)
    assert (result.status, result.stop_reason) == (
        RunStatus.BUDGET_EXCEEDED,
        StopReason.TOKEN_BUDGET,
    )
    assert result.usage.input_tokens + result.usage.output_tokens == 360


async def test_schema_invalid_tool_call_is_fed_back_to_the_model(harness: Harness) -> None:
    seen: list[str] = []

    def script(request: ModelCallInput):  # type: ignore[no-untyped-def]
        if request.step == 1:
            return calls(1, ("refund_order", {"order_id": "A-1001", "amount_usd": "lots"}))
        seen.extend(m.content or "" for m in tool_messages(request))
        return answer("I could not refund that.")

    handle = await harness.start("tester", harness.script("bad args", script))
    result = await run_result(handle)
    assert result.status is RunStatus.COMPLETED
    [call] = result.tool_calls
    assert call.decision == "invalid"
    assert "amount_usd" in (call.error or "") and "reason" in (call.error or "")
    assert "invalid arguments" in json.loads(seen[0])["error"]
    assert [e.kind for e in result.safety_events] == ["invalid_tool_call"]


async def test_unknown_tool_is_fed_back_not_crashed_on(harness: Harness) -> None:
    def script(request: ModelCallInput):  # type: ignore[no-untyped-def]
        if request.step == 1:
            return calls(1, ("drop_tables", {}))
        return answer(tool_messages(request)[0].content or "")

    handle = await harness.start("tester", harness.script("unknown tool", script))
    result = await run_result(handle)
    assert result.status is RunStatus.COMPLETED
    assert "unknown tool 'drop_tables'" in (result.output or "")
    assert "search_kb" in (result.output or "")  # the model is told what it may call


async def test_empty_answer_is_fed_back_then_answered(harness: Harness) -> None:
    def script(request: ModelCallInput):  # type: ignore[no-untyped-def]
        return answer("" if request.step == 1 else "here you go")

    result = await run_result(await harness.start("tester", harness.script("empty", script)))
    assert (result.status, result.output, result.steps) == (RunStatus.COMPLETED, "here you go", 2)
    assert [e.kind for e in result.safety_events] == ["empty_answer"]


async def test_run_timeout_ends_a_run_waiting_for_approval(harness: Harness) -> None:
    def script(request: ModelCallInput):  # type: ignore[no-untyped-def]
        return calls(1, ("close_account", {"account_id": "a"}))

    handle = await harness.start("tester-timeout", harness.script("t", script))
    # Park it first: the time-skipping server then jumps straight to the run's deadline.
    await harness.wait_for_status(handle, "awaiting_approval")
    result = await run_result(handle)
    assert (result.status, result.stop_reason) == (RunStatus.TIMED_OUT, StopReason.RUN_TIMEOUT)
    assert result.reason == "run timeout of 60s reached"
    assert (result.approvals[0].outcome, result.approvals[0].approver) == ("timed_out", None)


async def test_model_failure_that_retries_cannot_fix_fails_the_run(harness: Harness) -> None:
    handle = await harness.start("tester", "no script is registered for this text")
    result = await run_result(handle)
    assert (result.status, result.stop_reason) == (RunStatus.FAILED, StopReason.MODEL_ERROR)
    assert "no script" in (result.reason or "")


async def test_unknown_agent_fails_with_config_error(harness: Harness) -> None:
    result = await run_result(await harness.start("no-such-agent", "hello"))
    assert (result.status, result.stop_reason) == (RunStatus.FAILED, StopReason.CONFIG_ERROR)
    assert "unknown agent 'no-such-agent'" in (result.reason or "")


async def test_continue_as_new_carries_state_forward(harness: Harness) -> None:
    def script(request: ModelCallInput):  # type: ignore[no-untyped-def]
        if request.step <= 8:
            return search_forever(request)
        return answer(f"done after {len(tool_messages(request))} searches")

    handle = await harness.start("tester-can", harness.script("long", script))
    result = await run_result(handle)
    assert result.status is RunStatus.COMPLETED
    assert result.output == "done after 8 searches"  # the conversation survived
    assert result.steps == 9
    assert [c.step for c in result.tool_calls] == list(range(1, 9))
    assert result.usage.input_tokens == 900 and result.usage.output_tokens == 180
    assert result.config is not None and result.config.agent_version == "7.0.0"
    state = await handle.query(Query.STATE, result_type=AgentRunState)
    assert state.continued_runs >= 2
    description = await handle.describe()
    assert description.status is WorkflowExecutionStatus.COMPLETED
    assert description.run_id != handle.result_run_id  # the run that finished is a later one
