"""Log records to OpenTelemetry: with OTEL_LOGS_EXPORTER set (opsready.telemetry_export),
every line the logging set-up writes also goes to a LoggerProvider as a structured OTel
log record, after the same processors as the line (correlation fields, redaction).

Our own handler, not the SDK's `LoggingHandler` (deprecated) or the logging
instrumentation's: those send a stdlib record as it is, so the lines of temporalio's loggers
would reach the exporter without their fields lifted and without redaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry._logs import SeverityNumber
from structlog.types import EventDict, Processor, WrappedLogger

from opsready import telemetry_export

if TYPE_CHECKING:
    from opentelemetry._logs import Logger
    from opentelemetry.sdk._logs import LoggerProvider

_SEVERITY = [  # (lowest stdlib level, OTel severity), highest first
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
    (logging.DEBUG, SeverityNumber.DEBUG),
]
_SEVERITY_TEXT = {"WARNING": "WARN", "CRITICAL": "FATAL"}  # the OTel names, as the SDK maps
# Carried by the OTel record itself (body, time, severity, trace context), so not repeated.
_NOT_ATTRIBUTES = {"event", "level", "timestamp", "trace_id", "span_id"}
_STRUCTLOG_META = {"_record", "_from_structlog", "positional_args"}


class OTelLogBridge(logging.Handler):
    """A stdlib handler beside the stream handler, emitting to `provider`."""

    def __init__(self, provider: LoggerProvider, processors: Sequence[Processor]) -> None:
        super().__init__()
        self.provider = provider
        self.is_closed = False
        self._loggers: dict[str, Logger] = {}
        # structlog's formatter runs `processors` on lines from stdlib loggers (lines from
        # structlog have been through them already); the last step emits instead of rendering.
        self.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=list(processors), processors=[self._emit]
            )
        )

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("opentelemetry"):
            return  # an exporter's own complaint, which would feed back into the exporter
        try:
            self.format(record)
        except Exception:
            self.handleError(record)

    def _emit(self, _: WrappedLogger, __: str, event_dict: EventDict) -> str:
        record: logging.LogRecord = event_dict["_record"]
        logger = self._loggers.get(record.name)
        if logger is None:
            logger = self._loggers[record.name] = self.provider.get_logger(record.name)
        severity = next((s for level, s in _SEVERITY if record.levelno >= level), None)
        logger.emit(
            timestamp=int(record.created * 1e9),
            severity_number=severity or SeverityNumber.UNSPECIFIED,
            severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
            body=str(event_dict.get("event", "")),
            attributes={
                key: _attribute(value)
                for key, value in event_dict.items()
                if key not in _NOT_ATTRIBUTES and key not in _STRUCTLOG_META and value is not None
            },
        )
        return ""

    def flush(self) -> None:
        self.provider.force_flush()

    def close(self) -> None:
        """`logging.shutdown()` (the CLI's exit) and re-configuration end here: export what
        is buffered, then stop the provider."""
        if not self.is_closed:
            self.is_closed = True
            self.provider.shutdown()
        super().close()


def _attribute(value: Any) -> Any:
    """OTel attribute values are primitives or lists of them; anything else as JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | bool | int | float) for v in value
    ):
        return list(value)
    return json.dumps(value, default=str)


def otel_log_bridge(
    processors: Sequence[Processor], env: Mapping[str, str], service_name: str = "opsready"
) -> OTelLogBridge | None:
    """The bridge to the exporters OTEL_LOGS_EXPORTER selects; None when it selects none."""
    exporters = telemetry_export.log_processors(env)
    if not exporters:
        return None
    from opentelemetry.sdk._logs import LoggerProvider

    resource = telemetry_export.service_resource(env, service_name)
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for processor in exporters:
        provider.add_log_record_processor(processor)
    return OTelLogBridge(provider, processors)
