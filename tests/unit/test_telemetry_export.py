"""Where telemetry goes: the OTEL_* exporter variables as the SDK defines them, each choice
building the SDK's exporter, the console really printing, and OTLP over http/protobuf and
over gRPC reaching a receiver on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from opentelemetry.exporter.otlp.proto.grpc import _log_exporter as grpc_logs
from opentelemetry.exporter.otlp.proto.grpc import metric_exporter as grpc_metrics
from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as grpc_traces
from opentelemetry.exporter.otlp.proto.http import _log_exporter as http_logs
from opentelemetry.exporter.otlp.proto.http import metric_exporter as http_metrics
from opentelemetry.exporter.otlp.proto.http import trace_exporter as http_traces
from opentelemetry.sdk import _configuration as sdk_configuration
from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from opsready import telemetry_export
from opsready.errors import ConfigError
from opsready.settings import PROJECT_ROOT
from opsready.telemetry import Telemetry, export_summary
from opsready.telemetry_export import GRPC, HTTP, SIGNALS, Signal, exporter_names
from tests.fakes.otlp_receivers import OtlpGrpcReceiver, OtlpHttpReceiver

EXPECTED: dict[tuple[Signal, str], type] = {
    ("traces", "console"): ConsoleSpanExporter,
    ("traces", "grpc"): grpc_traces.OTLPSpanExporter,
    ("traces", "http/protobuf"): http_traces.OTLPSpanExporter,
    ("metrics", "console"): ConsoleMetricExporter,
    ("metrics", "grpc"): grpc_metrics.OTLPMetricExporter,
    ("metrics", "http/protobuf"): http_metrics.OTLPMetricExporter,
    ("logs", "console"): ConsoleLogRecordExporter,
    ("logs", "grpc"): grpc_logs.OTLPLogExporter,
    ("logs", "http/protobuf"): http_logs.OTLPLogExporter,
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No OTEL_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    yield monkeypatch


def _build(signal: Signal, env: dict[str, str]) -> list[Any]:
    """The exporters `env` makes for `signal`, unwrapped from their processor or reader."""
    if signal == "traces":
        return [p.span_exporter for p in telemetry_export.span_processors(env)]  # type: ignore[attr-defined]
    if signal == "metrics":
        return [r._exporter for r in telemetry_export.metric_readers(env)]  # type: ignore[attr-defined]
    return [p._batch_processor._exporter for p in telemetry_export.log_processors(env)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_{S}_EXPORTER": "console"},
        {"OTEL_{S}_EXPORTER": "otlp"},
        {"OTEL_{S}_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
        {
            "OTEL_{S}_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_{S}_PROTOCOL": "grpc",
        },
        {"OTEL_{S}_EXPORTER": "console, otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        {"OTEL_{S}_EXPORTER": "otlp_proto_http"},
        {"OTEL_{S}_EXPORTER": "none"},
        {"OTEL_{S}_EXPORTER": "NONE"},
        {},
    ],
)
@pytest.mark.parametrize("signal", SIGNALS)
def test_exporter_variables_mean_what_the_sdk_configurator_reads(
    clean_env: pytest.MonkeyPatch, signal: Signal, env: dict[str, str]
) -> None:
    concrete = {key.replace("{S}", signal.upper()): value for key, value in env.items()}
    for key, value in concrete.items():
        clean_env.setenv(key, value)
    assert exporter_names(signal, concrete) == sdk_configuration._get_exporter_names(signal)


@pytest.mark.parametrize(("signal", "choice"), sorted(EXPECTED))
def test_each_exporter_choice_builds_the_sdk_exporter_for_that_signal(
    clean_env: pytest.MonkeyPatch, signal: Signal, choice: str
) -> None:
    env = {f"OTEL_{signal.upper()}_EXPORTER": "console" if choice == "console" else "otlp"}
    if choice != "console":
        env[f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL"] = choice
    [exporter] = _build(signal, env)
    assert type(exporter) is EXPECTED[(signal, choice)]
    for other in SIGNALS:
        assert other == signal or _build(other, env) == []
    exporter.shutdown()


def test_a_comma_list_builds_every_exporter_and_none_builds_nothing(
    clean_env: pytest.MonkeyPatch,
) -> None:
    both = _build("traces", {"OTEL_TRACES_EXPORTER": "console,otlp"})
    assert [type(e) for e in both] == [ConsoleSpanExporter, grpc_traces.OTLPSpanExporter]
    for exporter in both:
        exporter.shutdown()
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert _build("traces", {**endpoint, "OTEL_TRACES_EXPORTER": "none"}) == []


def test_an_endpoint_alone_exports_that_signal_over_otlp_http_unless_a_protocol_says_grpc() -> None:
    traces_only = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}
    assert [exporter_names(s, traces_only) for s in SIGNALS] == [[HTTP], [], []]
    every = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}
    assert [exporter_names(s, every) for s in SIGNALS] == [[HTTP]] * 3
    grpc = {**every, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert [exporter_names(s, grpc) for s in SIGNALS] == [[GRPC]] * 3
    assert all(exporter_names(s, {}) == [] for s in SIGNALS)


def test_a_bad_exporter_or_protocol_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL.*http/json"):
        exporter_names(
            "metrics",
            {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json"},
        )
    with pytest.raises(ConfigError, match=r"OTEL_LOGS_EXPORTER.*zipkin"):
        telemetry_export.log_processors({"OTEL_LOGS_EXPORTER": "zipkin"})


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example:443/in",
        },
    ],
)
def test_the_summary_names_the_endpoint_the_exporter_really_uses(
    clean_env: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for key, value in env.items():
        clean_env.setenv(key, value)
    http = http_traces.OTLPSpanExporter()
    grpc = grpc_traces.OTLPSpanExporter()
    assert telemetry_export.otlp_endpoint("traces", HTTP, env) == http._endpoint
    assert urlsplit(telemetry_export.otlp_endpoint("traces", GRPC, env)).netloc == grpc._endpoint
    http.shutdown()
    grpc.shutdown()


def test_the_summary_says_where_each_signal_goes() -> None:
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_LOGS_EXPORTER": "none",
    }
    assert export_summary(env) == (
        "telemetry: traces -> OTLP/gRPC http://collector:4317, "
        "metrics -> console (stdout), logs -> not exported"
    )
    endpoint_only = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:4318/v1/metrics"}
    assert export_summary(endpoint_only) == (
        "telemetry: traces -> not exported, metrics -> OTLP/HTTP http://m:4318/v1/metrics, "
        "logs -> not exported"
    )
    assert export_summary({}).startswith("telemetry: not exported")


def test_console_prints_spans_metrics_and_log_records() -> None:
    script = textwrap.dedent(
        """
        import logging, structlog
        from opsready.logs import configure_logging
        from opsready.telemetry import Telemetry

        configure_logging(fmt="json")
        telemetry = Telemetry.create()
        with telemetry.tracer.start_as_current_span("console-check"):
            telemetry.instruments.runs.add(1, {"status": "completed"})
            structlog.get_logger("opsready.check").info("hello", email="jane@example.com")
        telemetry.shutdown()
        logging.shutdown()
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="console",
        OTEL_LOGS_EXPORTER="console",
        OTEL_SERVICE_NAME="console-test",
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout
    assert '"name": "console-check"' in out
    assert '"name": "opsready.runs"' in out
    assert '"body": "hello"' in out
    assert '"service.name": "console-test"' in out
    assert "jane@example.com" not in out  # the log record went through redaction
    assert json.loads(done.stderr.splitlines()[-1])["event"] == "hello"  # the line as before


def _export_one_span(name: str) -> None:
    telemetry = Telemetry.create(metric_readers=[])
    with telemetry.tracer.start_as_current_span(name):
        pass
    telemetry.shutdown()  # flushes the batch: the request has been answered on return


def test_otlp_over_http_protobuf_reaches_a_receiver(clean_env: pytest.MonkeyPatch) -> None:
    with OtlpHttpReceiver() as receiver:
        clean_env.setenv("OTEL_TRACES_EXPORTER", "otlp")
        clean_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.origin)
        _export_one_span("over-http")
    assert receiver.paths == ["/v1/traces"]
    assert receiver.content_types == ["application/x-protobuf"]
    assert receiver.span_names == ["over-http"]


def test_otlp_over_grpc_reaches_a_receiver(clean_env: pytest.MonkeyPatch) -> None:
    with OtlpGrpcReceiver() as receiver:
        clean_env.setenv("OTEL_TRACES_EXPORTER", "otlp")
        clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
        clean_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
        _export_one_span("over-grpc")
    assert receiver.span_names == ["over-grpc"]
