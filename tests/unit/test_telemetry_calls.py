"""The model and tool call instrumentation (opsready.telemetry_calls) on in-memory exporters:
span names and GenAI attributes, metric labels, log records, failures and redaction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError

from opsready.telemetry import Telemetry
from opsready.telemetry_calls import tool_outcome
from workflows.payloads import (
    ChatMessage,
    ModelCallInput,
    ModelCallResult,
    ModelChoice,
    ModelPrice,
    RunContext,
    ToolCallInput,
    ToolCallRequest,
    ToolCallResult,
)
from workflows.types import RiskTier

EMAIL = "jane.doe@example.com"


@dataclass
class Recorded:
    telemetry: Telemetry
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def span(self) -> ReadableSpan:
        [span] = self.spans.get_finished_spans()
        return span

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            (
                dict(point.attributes or {}),
                getattr(point, "sum", None) or getattr(point, "value", 0),
            )
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = Telemetry.create(
        span_processors=[SimpleSpanProcessor(spans)], metric_readers=[reader], env={}
    )
    yield Recorded(telemetry, spans, reader)
    telemetry.shutdown()


def model_request(**changes: Any) -> ModelCallInput:
    values: dict[str, Any] = {
        "run_id": "r1",
        "agent": "support-triage",
        "step": 2,
        "model": ModelChoice(
            model="local/small",
            price=ModelPrice(input_per_million_usd=1.0, output_per_million_usd=2.0),
        ),
        "prompt_version": "v1",
        "messages": [ChatMessage(role="user", content="hi")],
        "tools": [],
        "max_output_tokens": 100,
        "context": RunContext(variant="canary", agent_version="1.1.0", config_hash="abc"),
    }
    return ModelCallInput(**(values | changes))


def tool_input(**changes: Any) -> ToolCallInput:
    values: dict[str, Any] = {
        "run_id": "r1",
        "agent": "support-triage",
        "step": 3,
        "call_id": "c1",
        "tool": "refund_order",
        "arguments": {"order": "A-1"},
        "idempotency_key": "r1:3:c1",
        "risk_tier": RiskTier.WRITE,
        "decision": "approved",
    }
    return ToolCallInput(**(values | changes))


@pytest.mark.parametrize(
    ("result", "simulate", "outcome"),
    [
        (None, False, "raised"),
        (ToolCallResult(ok=True, output={"simulated": True}), True, "simulated"),
        (ToolCallResult(ok=True, output={"simulated": True}), False, "ok"),
        (ToolCallResult(ok=True, output={"done": 1}), True, "ok"),
        (ToolCallResult(ok=True, output="text"), True, "ok"),
        (ToolCallResult(ok=False, error="no", output={"simulated": True}), True, "error"),
        (ToolCallResult(ok=True, was_replayed=True), False, "replayed"),
        (ToolCallResult(ok=False, error="no", was_replayed=True), False, "replayed"),
        (ToolCallResult(ok=True), False, "ok"),
        (ToolCallResult(ok=False, error="no"), False, "error"),
    ],
)
def test_a_tool_calls_outcome_is_classified_in_one_order(
    result: ToolCallResult | None, simulate: bool, outcome: str
) -> None:
    assert tool_outcome(result, simulate=simulate) == outcome


def test_an_answered_model_call_records_its_span_metrics_and_log_line(
    recorded: Recorded,
) -> None:
    answer = ModelCallResult(
        message=ChatMessage(role="assistant", content="ok"),
        input_tokens=12,
        output_tokens=5,
        finish_reason="tool_calls",
    )
    checked = [ToolCallRequest(id="1", name="x"), ToolCallRequest(id="2", name="y", error="bad")]
    with capture_logs() as logs, recorded.telemetry.model_call(model_request()) as call:
        call.record(answer, tool_calls=checked, cost_usd=0.25)
    span = recorded.span()
    assert span.name == "chat small" and span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "local",
        "gen_ai.request.model": "small",
        "opsready.agent": "support-triage",
        "opsready.variant": "canary",
        "opsready.step": 2,
        "opsready.prompt_version": "v1",
        "opsready.agent_version": "1.1.0",
        "opsready.config_hash": "abc",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.response.finish_reasons": ("tool_calls",),
        "opsready.cost_usd": 0.25,
    }
    tokens = {
        labels["gen_ai.token.type"]: value
        for labels, value in recorded.points("gen_ai.client.token.usage")
    }
    assert tokens == {"input": 12, "output": 5}
    [(labels, _)] = recorded.points("gen_ai.client.operation.duration")
    assert "error.type" not in labels and labels["gen_ai.request.model"] == "small"
    [line] = logs
    assert line["event"] == "model call" and line["log_level"] == "info"
    assert line["tool_calls"] == ["x", "y"] and line["invalid_tool_calls"] == 1
    assert {"provider", "model", "prompt_version", "cost_usd", "latency_ms"} <= set(line)
    assert "prompt" not in line  # content only with OPSREADY_LOG_CONTENT


def test_a_failed_model_call_records_its_error_type_and_a_warning(recorded: Recorded) -> None:
    failure = ApplicationError("slow down", type="ModelRateLimited")
    with (
        capture_logs() as logs,
        pytest.raises(ApplicationError),
        recorded.telemetry.model_call(model_request()),
    ):
        raise failure
    span = recorded.span()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ModelRateLimited"
    [(labels, _)] = recorded.points("gen_ai.client.operation.duration")
    assert labels["error.type"] == "ModelRateLimited"
    assert recorded.points("gen_ai.client.token.usage") == []
    [line] = logs
    assert (line["event"], line["log_level"]) == ("model call failed", "warning")
    assert line["error_type"] == "ModelRateLimited" and "slow down" in line["error"]


def test_a_tool_call_counts_by_outcome_and_a_raise_is_an_error(recorded: Recorded) -> None:
    t = recorded.telemetry
    with capture_logs() as logs:
        with t.tool_call(tool_input()) as call:
            call.record(ToolCallResult(ok=True, output={"refunded": True}))
        with pytest.raises(RuntimeError), t.tool_call(tool_input(call_id="c2")):
            raise RuntimeError("worker lost")
    ok, raised = recorded.spans.get_finished_spans()
    assert ok.name == raised.name == "execute_tool refund_order"
    assert (ok.attributes or {})["gen_ai.operation.name"] == "execute_tool"
    assert (ok.attributes or {})["opsready.risk_tier"] == "write"
    assert (ok.attributes or {})["opsready.decision"] == "approved"
    assert ok.status.status_code is StatusCode.UNSET
    assert raised.status.status_code is StatusCode.ERROR
    assert (raised.attributes or {})["error.type"] == "ActivityError"
    by_outcome = {
        labels["outcome"]: value for labels, value in recorded.points("opsready.tool.calls")
    }
    assert by_outcome == {"ok": 1, "raised": 1}
    [(labels, errors)] = recorded.points("opsready.tool.errors")
    assert errors == 1 and labels["gen_ai.tool.name"] == "refund_order"
    assert [(line["outcome"], line["log_level"]) for line in logs] == [
        ("ok", "info"),
        ("raised", "warning"),
    ]


def test_attributes_labels_and_logged_content_pass_redaction(recorded: Recorded) -> None:
    t = recorded.telemetry
    t.log_content = True
    request = model_request(agent=EMAIL, messages=[ChatMessage(role="user", content=EMAIL)])
    answer = ModelCallResult(
        message=ChatMessage(role="assistant", content="x"), input_tokens=1, output_tokens=1
    )
    with t.model_call(request) as call:
        call.record(answer, tool_calls=[], cost_usd=None)
    with t.tool_call(tool_input(agent=EMAIL)) as tool:
        tool.record(ToolCallResult(ok=True))
    for span in recorded.spans.get_finished_spans():
        assert EMAIL not in str(dict(span.attributes or {}))
    for name in ("gen_ai.client.token.usage", "opsready.tool.calls"):
        assert all(EMAIL not in str(labels) for labels, _ in recorded.points(name))


def test_a_fallback_call_says_what_it_fell_back_from_on_its_span_and_in_a_metric(
    recorded: Recorded,
) -> None:
    request = model_request(fallback_from="openai/gpt-4o")
    with recorded.telemetry.model_call(request) as call:
        answer = ModelCallResult(
            message=ChatMessage(role="assistant", content="ok"), input_tokens=1, output_tokens=1
        )
        call.record(answer, tool_calls=[], cost_usd=0.0)
    assert recorded.span().attributes["opsready.fallback_from"] == "openai/gpt-4o"  # type: ignore[index]
    assert recorded.points("opsready.model.fallbacks") == [
        (
            {
                "opsready.agent": "support-triage",
                "opsready.fallback_from": "openai/gpt-4o",
                "opsready.fallback_to": "local/small",
            },
            1,
        )
    ]
