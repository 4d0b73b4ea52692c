"""The one logging set-up for workers and starters.

structlog renders JSON lines in production and readable console lines in dev
(OPSREADY_LOG_FORMAT=json|console; default: console on a terminal, JSON otherwise), and
stdlib logging (temporalio's own loggers included) goes through the same processors, so
every line carries the correlation fields bound in contextvars and passes redaction.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from structlog.types import EventDict, Processor, WrappedLogger
from temporalio import activity, workflow

from opsready.redaction import Redactor
from opsready.settings import LogSettings
from opsready.telemetry_logs import OTelLogBridge, otel_log_bridge

# Fields temporalio's loggers attach as `extra`, lifted to top-level names.
_TEMPORAL_EXTRA = {
    "temporal_workflow": {
        "workflow_id": "run_id",
        "run_id": "temporal_run_id",
        "workflow_type": "workflow_type",
        "task_queue": "task_queue",
        "attempt": "workflow_task_attempt",
    },
    "temporal_activity": {
        "workflow_id": "run_id",
        "workflow_run_id": "temporal_run_id",
        "activity_type": "activity_type",
        "attempt": "attempt",
        "task_queue": "task_queue",
    },
}


def lift_temporal_extra(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Turn temporalio's `temporal_workflow`/`temporal_activity` dicts into plain fields."""
    for key, mapping in _TEMPORAL_EXTRA.items():
        info = event_dict.pop(key, None)
        if isinstance(info, dict):
            for source, target in mapping.items():
                if source in info:
                    event_dict.setdefault(target, info[source])
    return event_dict


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """trace_id and span_id of the current OpenTelemetry span, when there is one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def redaction_processor(redactor: Redactor) -> Processor:
    def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        return {key: redactor.redact(value, key) for key, value in event_dict.items()}

    return redact


def _drop_stdlib_noise(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in ("_from_structlog", "_record", "positional_args"):
        event_dict.pop(key, None)
    return event_dict


def shared_processors(redactor: Redactor) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        lift_temporal_extra,
        structlog.processors.format_exc_info,
        redaction_processor(redactor),
        # After redaction: trace ids and a timestamp hold nothing to mask, and are never the
        # same twice (each would miss redaction's cache of short strings and evict from it).
        add_trace_context,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def log_format(
    explicit: str | None = None, stream: TextIO | None = None, settings: LogSettings | None = None
) -> str:
    configured = (settings or LogSettings.from_env()).log_format if explicit is None else None
    chosen = (explicit or configured or "").strip().lower()
    if chosen in ("json", "console"):
        return chosen
    return "console" if (stream or sys.stderr).isatty() else "json"


def configure_logging(
    *,
    fmt: str | None = None,
    level: str | None = None,
    stream: TextIO | None = None,
    redactor: Redactor | None = None,
    settings: LogSettings | None = None,
) -> None:
    """Configure structlog and the root stdlib logger; safe to call more than once.
    Explicit arguments win over `settings` (default: read from the environment). With
    OTEL_LOGS_EXPORTER set, the same records also go to OpenTelemetry
    (opsready.telemetry_logs)."""
    settings = settings or LogSettings.from_env()
    redactor = redactor or Redactor(settings.redact_fields)
    shared = shared_processors(redactor)
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=str)
        if log_format(fmt, stream, settings) == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        # A line below the level is dropped before any processor runs.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_stdlib_noise,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    # The fields are lifted into the record; temporalio need not repeat them in the message.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, OTelLogBridge):
            old.close()  # flush what the bridge being replaced still holds
    bridge = otel_log_bridge(shared, os.environ)
    root.handlers = [handler] if bridge is None else [handler, bridge]
    root.setLevel((level or settings.log_level).upper())


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
