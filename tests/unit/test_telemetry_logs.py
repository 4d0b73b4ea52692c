"""Log records to OpenTelemetry (OTEL_LOGS_EXPORTER): the same fields and redaction as the
log line, the trace context of the span they were written in, and no bridge at all when
the variable selects no exporter."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider

from opsready.logs import configure_logging, shared_processors
from opsready.redaction import Redactor
from opsready.telemetry_logs import OTelLogBridge

EMAIL = "jane.doe@example.com"


@pytest.fixture
def exported() -> Iterator[InMemoryLogRecordExporter]:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    configure_logging(fmt="json", stream=io.StringIO(), level="INFO")
    bridge = OTelLogBridge(provider, shared_processors(Redactor()))
    logging.getLogger().addHandler(bridge)
    yield exporter
    logging.getLogger().removeHandler(bridge)
    bridge.close()
    configure_logging()


def _records(exporter: InMemoryLogRecordExporter) -> list[ReadableLogRecord]:
    return list(exporter.get_finished_logs())


def test_structlog_and_stdlib_lines_become_redacted_records_in_their_trace(
    exported: InMemoryLogRecordExporter,
) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("activity") as span:
        structlog.get_logger("opsready.model").info("model call", model="m", email=EMAIL)
        logging.getLogger("temporalio.activity").warning(
            "activity %s", "retried", extra={"temporal_activity": {"activity_type": "chat"}}
        )
    model, temporal = (r.log_record for r in _records(exported))
    assert model.body == "model call"
    assert model.severity_text == "INFO"
    assert dict(model.attributes or {}) == {
        "model": "m",
        "email": "[EMAIL]",
        "logger": "opsready.model",
    }
    assert temporal.body == "activity retried"
    assert temporal.severity_text == "WARN"
    assert (temporal.attributes or {})["activity_type"] == "chat"  # lifted like the line's
    for record in (model, temporal):
        assert record.trace_id == span.get_span_context().trace_id
        assert record.span_id == span.get_span_context().span_id


def test_the_exporters_own_log_lines_are_not_fed_back(
    exported: InMemoryLogRecordExporter,
) -> None:
    logging.getLogger("opentelemetry.exporter.otlp").warning("export failed")
    assert _records(exported) == []


def test_configure_logging_bridges_only_when_a_logs_exporter_is_selected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    configure_logging(fmt="json", stream=io.StringIO())
    assert not any(isinstance(h, OTelLogBridge) for h in logging.getLogger().handlers)

    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "console")
    configure_logging(fmt="json", stream=io.StringIO())
    [bridge] = [h for h in logging.getLogger().handlers if isinstance(h, OTelLogBridge)]

    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    configure_logging()
    assert not any(isinstance(h, OTelLogBridge) for h in logging.getLogger().handlers)
    assert bridge.is_closed  # what it still held was exported when it was replaced
