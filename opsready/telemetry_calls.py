"""The GenAI semantic conventions in one place: the span, metrics and log record of a model
call (`chat MODEL`) and of a tool call (`execute_tool TOOL`), as context managers the
activities wrap their logic in. Every attribute and label passes redaction."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import structlog
from opentelemetry.trace import Span, SpanKind, StatusCode
from temporalio.exceptions import ApplicationError

if TYPE_CHECKING:
    from opsready.telemetry import Telemetry
    from workflows.payloads import (
        ModelCallInput,
        ModelCallResult,
        ToolCallInput,
        ToolCallRequest,
        ToolCallResult,
    )

model_log = structlog.get_logger("opsready.model")
tool_log = structlog.get_logger("opsready.tool")

ToolOutcome = Literal["ok", "replayed", "simulated", "error", "raised"]
_TOOL_SUCCESS: tuple[ToolOutcome, ...] = ("ok", "replayed", "simulated")


def tool_outcome(result: ToolCallResult | None, *, simulate: bool) -> ToolOutcome:
    """How a tool call ended, for the `outcome` label and log field.

    `raised`: the activity raised (unknown tool, cancelled; Temporal records why);
    `simulated`: a shadow run described a call with effects instead of making it;
    `replayed`: the stored result of an earlier attempt (whether it succeeded or not);
    otherwise `ok` or `error` as the tool answered."""
    if result is None:
        return "raised"
    output = result.output
    if simulate and result.ok and isinstance(output, dict) and output.get("simulated"):
        return "simulated"
    if result.was_replayed:
        return "replayed"
    return "ok" if result.ok else "error"


class ModelCallRecord:
    """What the model activity reports about its call: the answer, its cost, the checked
    tool calls. The duration is taken when the answer is recorded."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: float | None = None
        self.result: ModelCallResult | None = None
        self.tool_calls: list[ToolCallRequest] = []
        self.cost_usd: float | None = None

    def record(
        self,
        result: ModelCallResult,
        *,
        tool_calls: list[ToolCallRequest],
        cost_usd: float | None,
    ) -> None:
        self.seconds = time.perf_counter() - self.started
        self.result, self.tool_calls, self.cost_usd = result, tool_calls, cost_usd


class ToolCallRecord:
    """What the tool activity reports about its call: the result, once it has one."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.result: ToolCallResult | None = None

    def record(self, result: ToolCallResult) -> None:
        self.result = result


@contextmanager
def model_call(t: Telemetry, request: ModelCallInput) -> Iterator[ModelCallRecord]:
    """A CLIENT span `chat MODEL`, the duration and token histograms, and the `model call`
    log record (a warning with `error_type` when the call raised)."""
    provider, model = request.model.provider, request.model.name  # the one place reading it
    labels = t.attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "opsready.agent": request.agent,
            "opsready.variant": request.context.variant,
        }
    )
    span_attributes = {
        **labels,
        **t.attributes(
            {
                "opsready.step": request.step,
                "opsready.prompt_version": request.prompt_version,
                "opsready.build_id": request.context.build_id,
                "opsready.agent_version": request.context.agent_version,
                "opsready.config_hash": request.context.config_hash,
            }
        ),
    }
    if request.fallback_from:
        span_attributes["opsready.fallback_from"] = request.fallback_from
        t.instruments.fallbacks.add(
            1,
            t.attributes(
                {
                    "opsready.agent": request.agent,
                    "opsready.fallback_from": request.fallback_from,
                    "opsready.fallback_to": request.model.model,
                }
            ),
        )
    identity = {"provider": provider, "model": model, "prompt_version": request.prompt_version}
    with t.tracer.start_as_current_span(
        f"chat {model}", kind=SpanKind.CLIENT, attributes=span_attributes
    ) as span:
        call = ModelCallRecord()
        try:
            yield call
        except Exception as err:
            _model_failed(t, span, labels, identity, call, err)
            raise
        if call.result is not None:
            _model_answered(t, span, labels, identity, call, request)


def _model_failed(
    t: Telemetry,
    span: Span,
    labels: dict[str, Any],
    identity: dict[str, Any],
    call: ModelCallRecord,
    err: Exception,
) -> None:
    seconds = time.perf_counter() - call.started
    error_type = (
        (err.type or "ApplicationError")
        if isinstance(err, ApplicationError)
        else type(err).__name__
    )
    span.set_attribute("error.type", error_type)
    span.set_status(StatusCode.ERROR, error_type)
    t.instruments.operation_duration.record(seconds, {**labels, "error.type": error_type})
    model_log.warning(
        "model call failed",
        **identity,
        error_type=error_type,
        error=str(err),
        latency_ms=round(seconds * 1000, 1),
    )


def _model_answered(
    t: Telemetry,
    span: Span,
    labels: dict[str, Any],
    identity: dict[str, Any],
    call: ModelCallRecord,
    request: ModelCallInput,
) -> None:
    result, seconds = call.result, call.seconds
    assert result is not None and seconds is not None
    span.set_attributes(
        t.attributes(
            {
                "gen_ai.usage.input_tokens": result.input_tokens,
                "gen_ai.usage.output_tokens": result.output_tokens,
                "gen_ai.response.finish_reasons": [result.finish_reason],
                "opsready.cost_usd": call.cost_usd,
            }
        )
    )
    instruments = t.instruments
    instruments.operation_duration.record(seconds, labels)
    for kind, tokens in (("input", result.input_tokens), ("output", result.output_tokens)):
        instruments.token_usage.record(tokens, {**labels, "gen_ai.token.type": kind})
    record: dict[str, Any] = {
        **identity,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost_usd": call.cost_usd,
        "latency_ms": round(seconds * 1000, 1),
        "finish_reason": result.finish_reason,
        "tool_calls": [c.name for c in call.tool_calls],
        "invalid_tool_calls": sum(c.error is not None for c in call.tool_calls),
    }
    if t.log_content:
        record["prompt"] = [m.model_dump(exclude_defaults=True) for m in request.messages]
        record["completion"] = result.message.content
    model_log.info("model call", **record)


@contextmanager
def tool_call(t: Telemetry, call: ToolCallInput) -> Iterator[ToolCallRecord]:
    """A span `execute_tool TOOL`, the calls and errors counters by outcome, and the
    `tool call` log record (a warning unless the outcome is a success)."""
    risk_tier = call.risk_tier.value if call.risk_tier else None
    labels = t.attributes(
        {
            "gen_ai.tool.name": call.tool,
            "opsready.agent": call.agent,
            "opsready.variant": call.context.variant,
        }
    )
    attributes = {
        **labels,
        "gen_ai.operation.name": "execute_tool",
        **t.attributes(
            {
                "gen_ai.tool.call.id": call.call_id,
                "opsready.step": call.step,
                "opsready.risk_tier": risk_tier,
                "opsready.decision": call.decision,
                "opsready.build_id": call.context.build_id,
                "opsready.agent_version": call.context.agent_version,
            }
        ),
    }
    with t.tracer.start_as_current_span(f"execute_tool {call.tool}", attributes=attributes) as span:
        done = ToolCallRecord()
        try:
            yield done
        finally:
            # Also on a raise or a cancellation: then there is no result, the outcome is `raised`.
            result = done.result
            outcome = tool_outcome(result, simulate=call.simulate)
            t.instruments.tool_calls.add(1, {**labels, "outcome": outcome})
            if result is None or not result.ok:
                t.instruments.tool_errors.add(1, labels)
                span.set_status(StatusCode.ERROR, outcome)
                span.set_attribute("error.type", "ToolError" if result else "ActivityError")
            record: dict[str, Any] = {
                "tool": call.tool,
                "risk_tier": risk_tier,
                "decision": call.decision,
                "latency_ms": round((time.perf_counter() - done.started) * 1000, 1),
                "outcome": outcome,
                "error": result.error if result else None,
            }
            if t.log_content:
                record["arguments"] = call.arguments
                record["output"] = result.output if result else None
            log = tool_log.info if outcome in _TOOL_SUCCESS else tool_log.warning
            log("tool call", **record)
