"""The worker process: `opsready worker` (and the worker half of `opsready dev`)."""

from __future__ import annotations

import asyncio
import signal

import structlog

from opsready.settings import Settings
from starters.connection import connect
from workers.app import build_worker

log = structlog.get_logger("opsready.worker")


async def run_worker(
    settings: Settings, *, address: str | None = None, ready: asyncio.Event | None = None
) -> None:
    """Poll the task queue until SIGINT/SIGTERM, then finish in-flight tasks and stop."""
    client = await connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = build_worker(client, settings)
    async with worker:
        log.info(
            "worker started",
            task_queue=settings.task_queue,
            namespace=client.namespace,
            temporal=client.service_client.config.target_host,
        )
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("worker stopping")
