"""Telemetry as the benches switch it: off (no-op tracer and meter, no correlation, logs at
WARNING) or on (SDK tracer with a batch processor into memory, SDK meter with an in-memory
reader, correlation, JSON logs at INFO rendered to /dev/null); and a runtime whose SDK core
logs only errors (slow workflow tasks under a bench's load would bury the report)."""

from __future__ import annotations

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from opsready.telemetry import Instruments, Telemetry


def telemetry_off() -> Telemetry:
    meter = metrics.NoOpMeter("off")
    return Telemetry(tracer=trace.NoOpTracer(), meter=meter, instruments=Instruments.create(meter))


def telemetry_on() -> Telemetry:
    return Telemetry.create(
        span_processors=[BatchSpanProcessor(InMemorySpanExporter())],
        metric_readers=[InMemoryMetricReader()],
        env={},
    )


def quiet_runtime() -> Runtime:
    quiet = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    return Runtime(telemetry=TelemetryConfig(logging=quiet))
