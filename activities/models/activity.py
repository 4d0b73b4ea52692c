"""The model activity: call the provider, then check every proposed tool call.

Checking here (not in the workflow) keeps schema validation next to the tool code; the
workflow gets calls that are either valid with normalised arguments, or carry an `error`
that it feeds back to the model instead of running them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog
from opentelemetry.trace import SpanKind, StatusCode
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.models.base import ModelProvider
from activities.tools.registry import ToolRegistry
from opsready.telemetry import Telemetry
from workflows.contract import Activity, ErrorType
from workflows.payloads import ModelCallInput, ModelCallResult, ToolCallRequest, ToolSpec
from workflows.policy import price_usage

log = structlog.get_logger("opsready.model")


class ModelActivities:
    def __init__(
        self,
        providers: Mapping[str, ModelProvider],
        registry: ToolRegistry,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._providers = dict(providers)
        self._registry = registry
        self._telemetry = telemetry or Telemetry.create(span_processors=[], metric_readers=[])

    @activity.defn(name=Activity.MODEL_CHAT)
    async def chat(self, request: ModelCallInput) -> ModelCallResult:
        provider = self._providers.get(request.model.provider)
        if provider is None:
            known = ", ".join(sorted(self._providers))
            raise ApplicationError(
                f"no model provider {request.model.provider!r} on this worker (have: {known})",
                type=ErrorType.UNKNOWN_MODEL_PROVIDER,
                non_retryable=True,
            )
        t = self._telemetry
        labels = t.attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": request.model.provider,
                "gen_ai.request.model": request.model.name,
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
        with t.tracer.start_as_current_span(
            f"chat {request.model.name}", kind=SpanKind.CLIENT, attributes=span_attributes
        ) as span:
            started = time.perf_counter()
            try:
                result = await provider.complete(request)
            except ApplicationError as err:
                seconds = time.perf_counter() - started
                error_type = err.type or "ApplicationError"
                span.set_attribute("error.type", error_type)
                span.set_status(StatusCode.ERROR, error_type)
                t.instruments.operation_duration.record(
                    seconds, {**labels, "error.type": error_type}
                )
                log.warning(
                    "model call failed",
                    provider=request.model.provider,
                    model=request.model.name,
                    prompt_version=request.prompt_version,
                    error_type=error_type,
                    error=str(err),
                    latency_ms=round(seconds * 1000, 1),
                )
                raise
            seconds = time.perf_counter() - started
            cost = price_usage(request.model.price, result.input_tokens, result.output_tokens)
            span.set_attributes(
                t.attributes(
                    {
                        "gen_ai.usage.input_tokens": result.input_tokens,
                        "gen_ai.usage.output_tokens": result.output_tokens,
                        "gen_ai.response.finish_reasons": [result.finish_reason],
                        "opsready.cost_usd": cost,
                    }
                )
            )
            t.instruments.operation_duration.record(seconds, labels)
            t.instruments.token_usage.record(
                result.input_tokens, {**labels, "gen_ai.token.type": "input"}
            )
            t.instruments.token_usage.record(
                result.output_tokens, {**labels, "gen_ai.token.type": "output"}
            )
            checked = [self._check(call, request.tools) for call in result.message.tool_calls]
            record: dict[str, Any] = {
                "provider": request.model.provider,
                "model": request.model.name,
                "prompt_version": request.prompt_version,
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "cost_usd": cost,
                "latency_ms": round(seconds * 1000, 1),
                "finish_reason": result.finish_reason,
                "tool_calls": [call.name for call in checked],
                "invalid_tool_calls": sum(call.error is not None for call in checked),
            }
            if t.log_content:
                record["prompt"] = [m.model_dump(exclude_defaults=True) for m in request.messages]
                record["completion"] = result.message.content
            log.info("model call", **record)
        message = result.message.model_copy(update={"tool_calls": checked})
        return result.model_copy(update={"message": message})

    def _check(self, call: ToolCallRequest, allowed: list[ToolSpec]) -> ToolCallRequest:
        if call.error is not None:
            return call
        if call.name not in {spec.name for spec in allowed}:
            names_ = ", ".join(spec.name for spec in allowed) or "none"
            return call.model_copy(
                update={"error": f"unknown tool {call.name!r}; available tools: {names_}"}
            )
        arguments, error = self._registry.validate(call.name, call.arguments)
        return call.model_copy(update={"arguments": arguments, "error": error})
