"""Fallback chains and open circuit breakers in runs on the time-skipping server: models
tried in order with every switch recorded, an open breaker escalated to a human when the
agent says so, a tool switched off for the run while its breaker is open, and a read-only
agent answering a repeated question from its answer cache."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from opsready.runs import run_result
from tests.fakes.scripted import answer, calls
from tests.workflows.conftest import Harness
from workflows.contract import ErrorType, Update
from workflows.payloads import ChatMessage, ModelCallInput
from workflows.types import AgentRunState, ApprovalDecision, RunStatus


def down(*models: str, then: str = "answered") -> object:
    """A script whose calls to `models` fail for good; any other model answers."""

    def script(request: ModelCallInput) -> ChatMessage:
        if request.model.model in models:
            raise ApplicationError(
                f"{request.model.model} is down",
                type=ErrorType.MODEL_REQUEST_REJECTED,
                non_retryable=True,
            )
        return answer(f"{then} by {request.model.model}")

    return script


async def test_the_chain_is_tried_in_order_and_every_fallback_is_recorded(
    harness: Harness,
) -> None:
    text = harness.script("chain", down("scripted/test", "scripted/second"))  # type: ignore[arg-type]
    result = await run_result(await harness.start("tester-chain", text))
    assert result.status is RunStatus.COMPLETED
    assert result.output == "answered by scripted/backup"
    assert [(f.from_model, f.to_model) for f in result.fallbacks] == [
        ("scripted/test", "scripted/second"),
        ("scripted/second", "scripted/backup"),
    ]
    assert [e.kind for e in result.safety_events] == ["model_fallback", "model_fallback"]
    chain = [r.model.model for r in harness.scripted.requests if text in str(r.messages)]
    fallback_from = [r.fallback_from for r in harness.scripted.requests if text in str(r.messages)]
    assert chain == ["scripted/test", "scripted/second", "scripted/backup"]
    assert fallback_from == [None, "scripted/test", "scripted/second"]  # for its span, metric


async def test_an_open_breaker_is_escalated_and_the_model_tried_again_once_approved(
    harness: Harness,
) -> None:
    seen = []

    def open_once(request: ModelCallInput) -> ChatMessage:
        seen.append(request.model.model)
        if len(seen) == 1:
            raise ApplicationError(
                "circuit breaker model:scripted is open",
                type=ErrorType.CIRCUIT_OPEN,
                non_retryable=True,
            )
        return answer("back again")

    text = harness.script("escalate", open_once)
    handle = await harness.start("tester-chain", text)
    state = await harness.wait_for_status(handle, "awaiting_approval")
    assert "circuit breaker open" in state.pending_approvals[0].reason
    assert [e.kind for e in state.safety_events] == ["circuit_open"]
    await handle.execute_update(
        Update.DECIDE, ApprovalDecision(approved=True, approver="alice"), result_type=AgentRunState
    )
    result = await run_result(handle)
    assert result.status is RunStatus.COMPLETED and result.output == "back again"
    assert seen == ["scripted/test", "scripted/test"] and result.fallbacks == []


async def test_a_tool_whose_breaker_is_open_is_switched_off_for_the_rest_of_the_run(
    harness: Harness,
) -> None:
    def ask_twice(request: ModelCallInput) -> ChatMessage:
        if request.step <= 2:
            return calls(request.step, ("status_page", {"service": "payments"}))
        return answer("The status page is unavailable.")

    text = harness.script("status twice", ask_twice)
    result = await run_result(await harness.start("tester-chain", text))
    assert result.status is RunStatus.COMPLETED
    first, second = (c for c in result.tool_calls if c.tool == "status_page")
    assert first.decision == "failed" and "circuit breaker" in (first.error or "")
    assert second.decision == "denied" and "its circuit breaker is open" in (second.error or "")
    assert [e.kind for e in result.safety_events] == ["circuit_open"]


async def test_a_read_only_agent_answers_the_same_question_from_its_cache(
    harness: Harness,
) -> None:
    text = harness.script("What is the refund policy?", lambda _: answer("Thirty days."))
    first = await run_result(await harness.start("tester-cached", text))
    asked = len(harness.scripted.requests)
    again = await run_result(
        await harness.start("tester-cached", f"  what IS the refund   policy?{text[26:]}")
    )
    assert first.output == again.output == "Thirty days."
    assert again.reason == "answered from the cache" and again.usage.total_tokens == 0
    assert len(harness.scripted.requests) == asked  # no model call the second time
