"""An agent's guardrails around one model call: input checks before the first call, output
checks on every answer before the workflow (and so the user) sees it.

Run inside the model activity, so checking costs no extra activity or history event: the
call returns the masked text, tool calls a guardrail refused (`error`) or sent for review
(`review`), and a `GuardrailReport` with every finding for the run's safety events.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from opsready.guardrails import (
    GuardrailConfig,
    GuardrailContext,
    GuardrailHit,
    GuardrailOutcome,
    Stage,
    ToolOutput,
    run_input_checks,
    run_output_checks,
)
from workflows.control_types import GUARDRAIL_REFUSAL, GuardrailFinding, GuardrailReport
from workflows.payloads import ChatMessage, ModelCallInput, ModelCallResult, ToolCallRequest


def check_input(request: ModelCallInput) -> tuple[ModelCallInput, GuardrailReport | None]:
    """Input checks, on the run's first call only (no answer yet) and not again once a
    human approved the input: the request to send (user message masked) and the report.
    A report with `blocked` or `review` means the model must not be called."""
    if (
        request.guardrails is None
        or request.is_input_approved
        or any(m.role == "assistant" for m in request.messages)
    ):
        return request, None
    index = next((i for i, m in enumerate(request.messages) if m.role == "user"), None)
    if index is None:
        return request, None
    config = GuardrailConfig.model_validate(request.guardrails.model_dump())
    text = request.messages[index].content or ""
    outcome = run_input_checks(config, text, _context(request))
    report = GuardrailReport(
        findings=[_finding("input", hit) for hit in outcome.hits],
        input_text=outcome.text if outcome.text != text else None,
    )
    _stop_reasons(report, outcome, "input")
    if report.input_text is None:
        return request, report
    messages = list(request.messages)
    messages[index] = messages[index].model_copy(update={"content": report.input_text})
    return request.model_copy(update={"messages": messages}), report


def input_stopped(report: GuardrailReport) -> ModelCallResult:
    """The answer of a call the input checks stopped: no model call, no tokens."""
    return ModelCallResult(
        message=ChatMessage(role="assistant"),
        input_tokens=0,
        output_tokens=0,
        finish_reason="guardrail",
        guardrails=report,
    )


def check_output(
    request: ModelCallInput, result: ModelCallResult, report: GuardrailReport | None
) -> ModelCallResult:
    """Output checks on the answer and each proposed tool call, against the tool results
    the run has seen; `report` holds the input findings of this call, if any."""
    if request.guardrails is None:
        return result
    config = GuardrailConfig.model_validate(request.guardrails.model_dump())
    report = report or GuardrailReport()
    message, outputs, ctx = result.message, _tool_outputs(request), _context(request)
    text = message.content or ""
    is_answer = not message.tool_calls
    if text.strip():
        outcome = run_output_checks(config, text, outputs, ctx)
        report.findings += [_finding("output", hit) for hit in outcome.hits]
        if is_answer:
            _stop_reasons(report, outcome, "output")
            text = outcome.text
        else:  # words beside tool calls never reach the user; a blocked one is dropped
            text = "" if outcome.is_blocked else outcome.text
    calls = _check_calls(config, message.tool_calls, outputs, ctx, report)
    message = message.model_copy(update={"content": text or None, "tool_calls": calls})
    found = report.findings or report.input_text or report.blocked or report.review
    return result.model_copy(update={"message": message, "guardrails": report if found else None})


def _check_calls(
    config: GuardrailConfig,
    calls: list[ToolCallRequest],
    outputs: list[ToolOutput],
    ctx: GuardrailContext,
    report: GuardrailReport,
) -> list[ToolCallRequest]:
    """Each call's own findings: what the checks find with it that they did not find with
    the calls before it (checks such as refund grounding add up across calls)."""
    checked, proposed = [], []
    seen = _keys(run_output_checks(config, "", outputs, ctx))
    for call in calls:
        if call.error is not None:
            checked.append(call)
            continue
        proposed.append(call)
        with_call = ctx.model_copy(update={"tool_calls": list(proposed)})
        hits = run_output_checks(config, "", outputs, with_call).hits
        new = [hit for hit in hits if _key(hit) not in seen]
        seen |= {_key(hit) for hit in new}
        report.findings += [_finding("output", hit, call.id) for hit in new]
        blocked = [h for h in new if h.action == "block"]
        review = [h for h in new if h.action == "review"]
        if blocked:
            call = call.model_copy(
                update={"error": f"{GUARDRAIL_REFUSAL} {blocked[0].guardrail}: {blocked[0].detail}"}
            )
        elif review:
            call = call.model_copy(update={"review": f"{review[0].guardrail}: {review[0].detail}"})
        checked.append(call)
    return checked


def _stop_reasons(report: GuardrailReport, outcome: GuardrailOutcome, stage: Stage) -> None:
    if outcome.is_blocked:
        report.blocked, report.stage = outcome.reason, stage
    elif outcome.needs_review:
        report.review, report.stage = outcome.reason, stage


def _tool_outputs(request: ModelCallInput) -> list[ToolOutput]:
    outputs = []
    for message in request.messages:
        if message.role == "tool" and message.name:
            content: Any = message.content
            with contextlib.suppress(json.JSONDecodeError):
                content = json.loads(message.content or "null")
            outputs.append(ToolOutput(tool=message.name, output=content))
    return outputs


def _context(request: ModelCallInput) -> GuardrailContext:
    return GuardrailContext(agent=request.agent, run_id=request.run_id, step=request.step)


def _finding(stage: Stage, hit: GuardrailHit, call_id: str | None = None) -> GuardrailFinding:
    return GuardrailFinding(
        stage=stage,
        guardrail=hit.guardrail,
        kind=hit.kind,
        action=hit.action,
        detail=hit.detail,
        call_id=call_id,
    )


def _key(hit: GuardrailHit) -> tuple[str, str, str]:
    return (hit.guardrail, hit.kind, hit.detail)


def _keys(outcome: GuardrailOutcome) -> set[tuple[str, str, str]]:
    return {_key(hit) for hit in outcome.hits}
