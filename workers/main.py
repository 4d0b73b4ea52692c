"""The worker process: `opsready worker` (and the worker half of `opsready dev`)."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack

import structlog
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from activities.flags import shared_flag_client
from opsready.connection import connect
from opsready.settings import Settings
from opsready.setup import check_search_attributes
from opsready.telemetry import Telemetry, export_summary
from workers.app import build_activities, build_worker, describe_limits, rate_limited_workers
from workers.kill_switch import KillSwitchListener
from workers.queue_depth import QueueDepthMonitor
from workers.versioning import build_id, ensure_current_version, take_over_current_version

log = structlog.get_logger("opsready.worker")


async def run_worker(
    settings: Settings,
    *,
    address: str | None = None,
    ready: asyncio.Event | None = None,
    take_over: bool = False,
) -> None:
    """Poll the task queue until SIGINT/SIGTERM, then finish in-flight tasks and stop.

    With Worker Versioning on, a deployment's first worker makes its version current;
    `take_over` makes it current in any case (only for a server this process started)."""
    telemetry = Telemetry.create()
    client = await connect(address, telemetry=telemetry, runtime=sdk_runtime(settings))
    await check_search_attributes(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # One flag client for the activities and the kill-switch listener beside the worker.
    flags = shared_flag_client(settings)
    activities = build_activities(
        settings, namespace=client.namespace, telemetry=telemetry, flags=flags
    )
    worker = build_worker(client, settings, activities=activities)
    # A worker per rate-limited provider or tool, in this process, on its own task queue.
    limited = rate_limited_workers(client, settings, activities)
    queues = [settings.task_queue, *(w.task_queue for w in limited)]
    async with AsyncExitStack() as stack:
        for running in (worker, *limited):
            await stack.enter_async_context(running)
        await stack.enter_async_context(
            KillSwitchListener(client, settings, flags, telemetry=telemetry)
        )
        await stack.enter_async_context(QueueDepthMonitor(client, telemetry, queues))
        log.info(
            "worker started",
            task_queue=settings.task_queue,
            rate_limits=settings.rate_limits or None,  # calls/s, each on its own queue
            namespace=client.namespace,
            temporal=client.service_client.config.target_host,
            deployment=settings.deployment_name if settings.worker_versioning else None,
            build_id=build_id(settings) if settings.worker_versioning else None,
            slots=describe_limits(settings),
        )
        log.info(export_summary())
        await _route_new_runs(client, settings, take_over=take_over)
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("worker stopping")
    telemetry.shutdown()


async def _route_new_runs(client: Client, settings: Settings, *, take_over: bool) -> None:
    """Make this version current where that is ours to do, and say where new runs go."""
    route = take_over_current_version if take_over else ensure_current_version
    change = await route(client, settings)
    if change is None:
        log.info("worker versioning off: this worker takes unversioned tasks")
        return
    mine, routing = build_id(settings), change.after
    if change.before.current != routing.current:
        log.info("made this version current", deployment=change.deployment, build_id=mine)
    if routing.current == mine:
        log.info("new runs go to this version", deployment=change.deployment, build_id=mine)
    elif routing.ramping == mine:
        log.info(
            "a share of new runs goes to this version (ramping)",
            deployment=change.deployment,
            build_id=mine,
            ramp_percentage=routing.ramp_percentage,
        )
    else:
        log.warning(
            "new runs go to another version; this worker serves runs pinned to it, and new "
            "runs once an operator runs `opsready deploy ramp` or `deploy set-current`",
            deployment=change.deployment,
            build_id=mine,
            current=routing.current,
            ramping=routing.ramping,
            ramp_percentage=routing.ramp_percentage,
        )


def sdk_runtime(settings: Settings, host: str = "0.0.0.0") -> Runtime | None:
    """Temporal SDK metrics on a Prometheus endpoint when OPSREADY_METRICS_PORT is set."""
    if settings.metrics_port is None:
        return None
    bind = f"{host}:{settings.metrics_port}"
    log.info("temporal sdk metrics", prometheus=f"http://{bind}/metrics")
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
