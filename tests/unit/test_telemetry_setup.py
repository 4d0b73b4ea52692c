"""Telemetry set-up from the standard OTEL_* variables."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from opsready.telemetry import Telemetry, export_summary


def _processors(telemetry: Telemetry) -> list[object]:
    provider = telemetry.providers[0]
    assert isinstance(provider, TracerProvider)
    return list(provider._active_span_processor._span_processors)


def test_without_an_endpoint_nothing_is_exported_and_spans_still_work() -> None:
    telemetry = Telemetry.create(env={})
    assert _processors(telemetry) == []
    with telemetry.tracer.start_as_current_span("x") as span:
        assert span.get_span_context().is_valid  # trace ids for the logs regardless
    assert "not exported" in export_summary({})
    telemetry.shutdown()


def test_an_otlp_endpoint_turns_on_otlp_http_export() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SERVICE_NAME": "w1"}
    telemetry = Telemetry.create(env=env)
    [processor] = _processors(telemetry)
    assert isinstance(processor.span_exporter, OTLPSpanExporter)  # type: ignore[attr-defined]
    assert "127.0.0.1:4318" in export_summary(env)
    assert telemetry.providers[0].resource.attributes["service.name"] == "w1"


def test_log_content_is_off_unless_asked_for() -> None:
    assert Telemetry.create(env={}).log_content is False
    assert Telemetry.create(env={"OPSREADY_LOG_CONTENT": "true"}).log_content is True
