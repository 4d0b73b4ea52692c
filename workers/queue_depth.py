"""Task-queue backlog as metrics: how many activity tasks wait in each of the worker's
queues (the rate-limited ones included) and how old the oldest is, polled from Temporal
(`DescribeTaskQueue` with stats) every few seconds and exported as two gauges,
`opsready.task_queue.backlog` and `opsready.task_queue.backlog_age`. The wait each task
had is `opsready.activity.queue_wait`, recorded by the activities themselves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from types import TracebackType

import structlog
from opentelemetry.metrics import CallbackOptions, Observation
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from opsready.telemetry import Telemetry

log = structlog.get_logger("opsready.worker")


class QueueDepthMonitor:
    def __init__(
        self, client: Client, telemetry: Telemetry, queues: Sequence[str], every: float = 5.0
    ) -> None:
        self._client = client
        self._queues = list(queues)
        self._every = every
        self._latest: dict[str, tuple[int, float]] = {}  # queue -> (backlog, age in s)
        self._task: asyncio.Task[None] | None = None
        meter = telemetry.meter
        meter.create_observable_gauge(
            "opsready.task_queue.backlog",
            callbacks=[self._backlog],
            unit="{task}",
            description="Activity tasks waiting in a task queue (rate limits, busy workers)",
        )
        meter.create_observable_gauge(
            "opsready.task_queue.backlog_age",
            callbacks=[self._age],
            unit="s",
            description="Age of the oldest activity task waiting in a task queue",
        )

    async def poll_once(self) -> dict[str, tuple[int, float]]:
        for queue in self._queues:
            request = DescribeTaskQueueRequest(
                namespace=self._client.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                report_stats=True,
            )
            response = await self._client.workflow_service.describe_task_queue(request)
            stats = response.stats
            age = stats.approximate_backlog_age.ToTimedelta().total_seconds()
            self._latest[queue] = (stats.approximate_backlog_count, age)
        return dict(self._latest)

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception as err:  # metrics must never stop a worker
                log.warning("task queue backlog unreadable", error=str(err))
            await asyncio.sleep(self._every)

    def _backlog(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"task_queue": q}) for q, (n, _) in self._latest.items()]

    def _age(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(age, {"task_queue": q}) for q, (_, age) in self._latest.items()]

    async def __aenter__(self) -> QueueDepthMonitor:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
