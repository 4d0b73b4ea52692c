"""OpenTelemetry for workers and starters: one `Telemetry` object holding the tracer, the
meter and opsready's instruments, passed explicitly to whatever records (tests build one
on in-memory exporters; processes build one from the standard OTEL_* variables, see
`opsready.telemetry_export`). The spans, metrics and log records of model and tool calls
are made in one place, `opsready.telemetry_calls`, reached as `model_call`/`tool_call`.

With nothing configured, spans and metrics are still produced in-process (so logs carry
trace ids) but nothing is exported and nothing breaks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

from opsready import telemetry_calls, telemetry_export
from opsready.redaction import Redactor
from opsready.settings import LogSettings

if TYPE_CHECKING:
    from workflows.payloads import ModelCallInput, ToolCallInput

SCOPE = "opsready"

# Bucket boundaries: seconds for latencies, tokens for usage, USD for cost.
_SECONDS = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0]
_TOKENS = [16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0]
# Incidents take minutes to days.
_INCIDENT_SECONDS = [10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0]
_USD = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]


@dataclass
class Instruments:
    """Every metric opsready records. Labels: agent, variant, and what the metric is by."""

    token_usage: metrics.Histogram
    operation_duration: metrics.Histogram
    runs: metrics.Counter
    run_duration: metrics.Histogram
    run_steps: metrics.Histogram
    run_cost: metrics.Histogram
    successful_run_cost: metrics.Histogram
    tool_calls: metrics.Counter
    tool_errors: metrics.Counter
    approvals: metrics.Counter
    approval_wait: metrics.Histogram
    safety_events: metrics.Counter
    incident_mttd: metrics.Histogram
    incident_mttr: metrics.Histogram
    fallbacks: metrics.Counter
    queue_wait: metrics.Histogram
    breaker_rejections: metrics.Counter

    @classmethod
    def create(cls, meter: metrics.Meter) -> Instruments:
        def hist(name: str, unit: str, description: str, buckets: list[float]) -> Any:
            return meter.create_histogram(
                name,
                unit=unit,
                description=description,
                explicit_bucket_boundaries_advisory=buckets,
            )

        return cls(
            token_usage=hist(
                "gen_ai.client.token.usage", "{token}", "Tokens per model call", _TOKENS
            ),
            operation_duration=hist(
                "gen_ai.client.operation.duration", "s", "Model call duration", _SECONDS
            ),
            runs=meter.create_counter("opsready.runs", "{run}", "Runs ended, by final status"),
            run_duration=hist("opsready.run.duration", "s", "Run latency, start to end", _SECONDS),
            run_steps=hist(
                "opsready.run.steps",
                "{step}",
                "Steps per run",
                [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0],
            ),
            run_cost=hist("opsready.run.cost", "USD", "Cost per run", _USD),
            successful_run_cost=hist(
                "opsready.run.successful_cost", "USD", "Cost per completed run", _USD
            ),
            tool_calls=meter.create_counter("opsready.tool.calls", "{call}", "Tool calls by tool"),
            tool_errors=meter.create_counter(
                "opsready.tool.errors", "{call}", "Tool calls that failed, by tool"
            ),
            approvals=meter.create_counter(
                "opsready.approvals",
                "{approval}",
                "Approval events: requested, approved, rejected, timed_out, halted",
            ),
            approval_wait=hist(
                "opsready.approval.wait", "s", "Time from approval request to decision", _SECONDS
            ),
            safety_events=meter.create_counter(
                "opsready.safety_events", "{event}", "Safety events by kind"
            ),
            incident_mttd=hist(
                "opsready.incident.mttd",
                "s",
                "Time to detect: first bad outcome to the incident's detection",
                _INCIDENT_SECONDS,
            ),
            incident_mttr=hist(
                "opsready.incident.mttr",
                "s",
                "Time to resolve: detection to resolution",
                _INCIDENT_SECONDS,
            ),
            fallbacks=meter.create_counter(
                "opsready.model.fallbacks",
                "{call}",
                "Model calls made to a fallback, by the model fallen back from and to",
            ),
            queue_wait=hist(
                "opsready.activity.queue_wait",
                "s",
                "Time an activity waited in its task queue (rate limits, busy workers)",
                _SECONDS,
            ),
            breaker_rejections=meter.create_counter(
                "opsready.breaker.rejections",
                "{call}",
                "Calls failed fast by an open circuit breaker, by breaker",
            ),
        )


@dataclass
class Telemetry:
    tracer: trace.Tracer
    meter: metrics.Meter
    instruments: Instruments
    redactor: Redactor = field(default_factory=Redactor.from_env)
    log_content: bool = False
    providers: tuple[Any, ...] = ()

    @classmethod
    def create(
        cls,
        *,
        span_processors: list[SpanProcessor] | None = None,
        metric_readers: list[MetricReader] | None = None,
        service_name: str = "opsready",
        env: Mapping[str, str] | None = None,
    ) -> Telemetry:
        """Providers of our own (never the global ones, so tests and processes can hold
        several); exporters from `span_processors`/`metric_readers` or, when not given,
        from the OTEL_* variables in `env` (default: the process environment)."""
        env = os.environ if env is None else env
        resource = telemetry_export.service_resource(env, service_name)
        tracer_provider = TracerProvider(resource=resource)
        if span_processors is None:
            span_processors = telemetry_export.span_processors(env)
        for processor in span_processors:
            tracer_provider.add_span_processor(processor)
        if metric_readers is None:
            metric_readers = telemetry_export.metric_readers(env)
        meter_provider = MeterProvider(resource=resource, metric_readers=metric_readers)
        meter = meter_provider.get_meter(SCOPE)
        return cls(
            tracer=tracer_provider.get_tracer(SCOPE),
            meter=meter,
            instruments=Instruments.create(meter),
            log_content=LogSettings.from_env(env).log_content,
            providers=(tracer_provider, meter_provider),
        )

    def attributes(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Span attributes / metric labels passed through redaction, Nones dropped."""
        return {
            key: self.redactor.redact(value, key.rsplit(".", 1)[-1])
            for key, value in values.items()
            if value is not None
        }

    def model_call(
        self, request: ModelCallInput
    ) -> AbstractContextManager[telemetry_calls.ModelCallRecord]:
        """Span, metrics and log record of one model call (`opsready.telemetry_calls`)."""
        return telemetry_calls.model_call(self, request)

    def tool_call(
        self, call: ToolCallInput
    ) -> AbstractContextManager[telemetry_calls.ToolCallRecord]:
        """Span, metrics and log record of one tool call (`opsready.telemetry_calls`)."""
        return telemetry_calls.tool_call(self, call)

    def queue_wait(self, activity_type: str, task_queue: str, seconds: float) -> None:
        """How long an activity waited between being scheduled and starting."""
        labels = {"activity": activity_type, "task_queue": task_queue}
        self.instruments.queue_wait.record(max(seconds, 0.0), labels)

    def shutdown(self) -> None:
        for provider in self.providers:
            provider.shutdown()


def export_summary(env: Mapping[str, str] | None = None) -> str:
    """One line for `opsready dev`/`worker`: where traces, metrics and logs go."""
    return telemetry_export.export_summary(os.environ if env is None else env)
