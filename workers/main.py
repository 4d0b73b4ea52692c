"""The worker process: `opsready worker` (and the worker half of `opsready dev`)."""

from __future__ import annotations

import asyncio
import signal

import structlog
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from opsready.settings import Settings
from opsready.telemetry import Telemetry, export_summary
from starters.connection import connect
from workers.app import build_activities, build_worker

log = structlog.get_logger("opsready.worker")


async def run_worker(
    settings: Settings, *, address: str | None = None, ready: asyncio.Event | None = None
) -> None:
    """Poll the task queue until SIGINT/SIGTERM, then finish in-flight tasks and stop."""
    telemetry = Telemetry.create()
    client = await connect(address, telemetry=telemetry, runtime=sdk_runtime(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = build_worker(
        client,
        settings,
        activities=build_activities(settings, namespace=client.namespace, telemetry=telemetry),
    )
    async with worker:
        log.info(
            "worker started",
            task_queue=settings.task_queue,
            namespace=client.namespace,
            temporal=client.service_client.config.target_host,
        )
        log.info(export_summary())
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("worker stopping")
    telemetry.shutdown()


def sdk_runtime(settings: Settings, host: str = "0.0.0.0") -> Runtime | None:
    """Temporal SDK metrics on a Prometheus endpoint when OPSREADY_METRICS_PORT is set."""
    if settings.metrics_port is None:
        return None
    bind = f"{host}:{settings.metrics_port}"
    log.info("temporal sdk metrics", prometheus=f"http://{bind}/metrics")
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
