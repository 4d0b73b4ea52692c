"""Telemetry as the benches switch it: off (no-op tracer and meter, no correlation, logs at
WARNING) or on (SDK tracer with a batch processor whose exporter drops what it is given, SDK
meter with an in-memory reader, correlation, JSON logs at INFO rendered to /dev/null); and a
runtime whose SDK core logs only errors (slow workflow tasks under a bench's load would
bury the report). Spans are dropped, not kept in memory: a process holding every span it
ever made slows down as its heap grows, which is no cost of telemetry a real exporter has."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from opsready.telemetry import Instruments, Telemetry


class DroppingSpanExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def telemetry_off() -> Telemetry:
    meter = metrics.NoOpMeter("off")
    return Telemetry(tracer=trace.NoOpTracer(), meter=meter, instruments=Instruments.create(meter))


def telemetry_on() -> Telemetry:
    return Telemetry.create(
        span_processors=[BatchSpanProcessor(DroppingSpanExporter())],
        metric_readers=[InMemoryMetricReader()],
        env={},
    )


def quiet_runtime() -> Runtime:
    quiet = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    return Runtime(telemetry=TelemetryConfig(logging=quiet))
