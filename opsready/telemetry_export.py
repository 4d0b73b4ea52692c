"""Where telemetry goes: the exporters the standard OTEL_* variables select for traces,
metrics and logs, loaded through the SDK's own exporter entry points, and a one-line
summary of the result.

Selection is the SDK configurator's (`opentelemetry.sdk._configuration`): a comma list in
OTEL_{TRACES,METRICS,LOGS}_EXPORTER of `console`, `otlp`, `otlp_proto_grpc`,
`otlp_proto_http`, any other installed exporter entry point, or `none`; `otlp` takes its
transport from OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL
(`grpc`, `http/protobuf`), else gRPC. One addition (docs/decisions.md): an unset exporter
variable means `otlp` over http/protobuf when an OTLP endpoint is set for the signal, and
nothing otherwise, so a process with nothing configured exports nothing and logs no
connection errors. The exporters read their endpoint, headers and timeouts from the
process environment themselves, exactly as under the SDK's auto-configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opsready.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LogRecordProcessor

Signal = Literal["traces", "metrics", "logs"]
SIGNALS: tuple[Signal, ...] = ("traces", "metrics", "logs")

GRPC, HTTP = "otlp_proto_grpc", "otlp_proto_http"
_BY_PROTOCOL = {"grpc": GRPC, "http/protobuf": HTTP}
_DEFAULT_ENDPOINT = {GRPC: "http://localhost:4317", HTTP: "http://localhost:4318"}


def _var(signal: Signal, what: str) -> str:
    """OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, …"""
    if what == "EXPORTER":
        return f"OTEL_{signal.upper()}_EXPORTER"
    return f"OTEL_EXPORTER_OTLP_{signal.upper()}_{what}"


def service_resource(env: Mapping[str, str], service_name: str = "opsready") -> Resource:
    """The resource every signal carries: OTEL_SERVICE_NAME, else `service_name`."""
    return Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", service_name)})


def otlp_endpoint_is_set(signal: Signal, env: Mapping[str, str]) -> bool:
    return bool(env.get(_var(signal, "ENDPOINT")) or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def exporter_names(signal: Signal, env: Mapping[str, str]) -> list[str]:
    """The exporter entry-point names OTEL_<SIGNAL>_EXPORTER selects (see the module doc)."""
    names = env.get(_var(signal, "EXPORTER"))
    if names is None or not names.strip():
        return (
            [_otlp(signal, "otlp", env, "http/protobuf")]
            if otlp_endpoint_is_set(signal, env)
            else []
        )
    if names.lower().strip() == "none":
        return []
    return [_otlp(signal, name.strip(), env, None) for name in names.split(",")]


def _otlp(signal: Signal, name: str, env: Mapping[str, str], default: str | None) -> str:
    """`otlp` resolved to its transport, as the SDK resolves it; other names unchanged."""
    if name != "otlp":
        return name
    variable = next(
        (v for v in (_var(signal, "PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL") if env.get(v)), None
    )
    protocol = (env[variable] if variable else default or "grpc").strip()
    if protocol not in _BY_PROTOCOL:
        raise ConfigError(
            f"{variable}: {protocol!r} is not an OTLP protocol; use grpc or http/protobuf"
        )
    return _BY_PROTOCOL[protocol]


def _load(signal: Signal, names: list[str]) -> list[type[Any]]:
    """The exporter classes behind `names`, from their entry points, as the SDK loads them
    (a name given twice is one exporter)."""
    from opentelemetry.sdk._configuration import _import_exporters

    picked = {s: (names if s == signal else []) for s in SIGNALS}
    try:
        traces, metrics, logs = _import_exporters(
            picked["traces"], picked["metrics"], picked["logs"]
        )
    except RuntimeError as err:
        raise ConfigError(
            f"{_var(signal, 'EXPORTER')}: {err}; use console, otlp or none "
            "(or install the exporter's package)"
        ) from None
    chosen: dict[str, dict[str, type[Any]]] = {"traces": traces, "metrics": metrics, "logs": logs}
    return list(chosen[signal].values())


def span_processors(env: Mapping[str, str]) -> list[SpanProcessor]:
    """One batch processor per selected trace exporter, as the SDK's configurator builds."""
    return [
        BatchSpanProcessor(exporter())
        for exporter in _load("traces", exporter_names("traces", env))
    ]


def metric_readers(env: Mapping[str, str]) -> list[MetricReader]:
    """A periodic reader per push exporter; pull exporters (e.g. Prometheus) are readers."""
    readers: list[MetricReader] = []
    for exporter in _load("metrics", exporter_names("metrics", env)):
        if issubclass(exporter, MetricExporter):
            readers.append(PeriodicExportingMetricReader(exporter()))
        else:
            readers.append(exporter())
    return readers


def log_processors(env: Mapping[str, str]) -> list[LogRecordProcessor]:
    """One batch processor per selected log exporter."""
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    return [
        BatchLogRecordProcessor(exporter())
        for exporter in _load("logs", exporter_names("logs", env))
    ]


def otlp_endpoint(signal: Signal, transport: str, env: Mapping[str, str]) -> str:
    """The URL an OTLP exporter sends `signal` to: its own variable, else the shared
    endpoint, else the exporter's default; over HTTP the shared one gains `/v1/<signal>`,
    over gRPC only scheme, host and port count (a path is ignored)."""
    url = (
        env.get(_var(signal, "ENDPOINT"))
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or _DEFAULT_ENDPOINT[transport]
    )
    if transport == GRPC:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url
    if env.get(_var(signal, "ENDPOINT")):
        return url
    return f"{url.removesuffix('/')}/v1/{signal}"


def _destination(signal: Signal, name: str, env: Mapping[str, str]) -> str:
    if name == GRPC:
        return f"OTLP/gRPC {otlp_endpoint(signal, GRPC, env)}"
    if name == HTTP:
        return f"OTLP/HTTP {otlp_endpoint(signal, HTTP, env)}"
    return "console (stdout)" if name == "console" else name


def export_summary(env: Mapping[str, str]) -> str:
    """One line: where each signal goes, from the same selection the exporters are built by."""
    where: dict[Signal, str] = {}
    for signal in SIGNALS:
        names = exporter_names(signal, env)
        where[signal] = " + ".join(_destination(signal, n, env) for n in names) or "not exported"
    if all(value == "not exported" for value in where.values()):
        return (
            "telemetry: not exported (set OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER, "
            "OTEL_LOGS_EXPORTER to console or otlp, or OTEL_EXPORTER_OTLP_ENDPOINT)"
        )
    return "telemetry: " + ", ".join(f"{signal} -> {where[signal]}" for signal in SIGNALS)
