"""What a running run waits on, read from Temporal's description of it: an activity
scheduled but not yet started is in a task-queue backlog; on a rate-limited provider's or
tool's queue (`<queue>.model.<provider>`), it waits on that rate limit (`opsready status`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowExecutionDescription


class Wait(BaseModel):
    activity: str  # the activity type, e.g. opsready.model.chat
    task_queue: str
    limited: str | None  # `model:<provider>` / `tool:<name>` when the queue is rate-limited
    seconds: float  # since it was scheduled
    attempt: int

    def describe(self) -> str:
        where = f"the rate limit of {self.limited}" if self.limited else "a free worker"
        return (
            f"{self.activity} waits on {where} (task queue {self.task_queue}, "
            f"{self.seconds:.1f}s, attempt {self.attempt})"
        )


def rate_limited_name(task_queue: str, main_queue: str) -> str | None:
    """`model:openai` for `<main>.model.openai`; None for any other queue."""
    prefix = f"{main_queue}."
    if not task_queue.startswith(prefix):
        return None
    kind, _, name = task_queue.removeprefix(prefix).partition(".")
    return f"{kind}:{name}" if kind in ("model", "tool") and name else None


def waits(
    description: WorkflowExecutionDescription, main_queue: str, now: datetime | None = None
) -> list[Wait]:
    """The run's activities scheduled and not yet picked up by a worker."""
    now = now or datetime.now(UTC)
    found = []
    for pending in description.raw_description.pending_activities:
        if pending.state != PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED:
            continue
        queue = pending.activity_options.task_queue.name or main_queue
        scheduled = pending.scheduled_time.ToDatetime(tzinfo=UTC)
        found.append(
            Wait(
                activity=pending.activity_type.name,
                task_queue=queue,
                limited=rate_limited_name(queue, main_queue),
                seconds=max((now - scheduled).total_seconds(), 0.0),
                attempt=pending.attempt,
            )
        )
    return found
