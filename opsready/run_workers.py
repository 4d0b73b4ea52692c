"""Which worker can act on a run, and what the run is doing right now: the build it is
pinned to, the task queue's pollers, the command that starts a worker for it, and its
pending activities (attempt, last error), all read from Temporal's descriptions."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError

from workflows.contract import DEFAULT_TASK_QUEUE, Activity

DEFAULT_DEPLOYMENT = "opsready"
# A live worker long-polls again at least this often (the server ends a poll after about a
# minute); a poller older than this is taken for a stopped worker.
POLLER_FRESH_FOR = timedelta(seconds=90)

_WHAT: dict[str, str] = {
    Activity.MODEL_CHAT.value: "model call",
    Activity.TOOL_RUN.value: "tool call",
    Activity.RESOLVE_CONFIG.value: "config",
    Activity.NOTIFY_APPROVERS.value: "approval notice",
    Activity.RECORD_OUTCOME.value: "outcome record",
    Activity.COMPARE_SHADOW.value: "shadow comparison",
}


class Placement(BaseModel):
    """Where a run's workflow tasks go: its task queue and, once pinned, its build."""

    run_id: str
    task_queue: str
    deployment: str | None = None
    build_id: str | None = None  # None: unversioned, or no workflow task completed yet

    def where(self) -> str:
        if self.build_id:
            return (
                f"pinned to build {self.build_id} of deployment {self.deployment}, "
                f"task queue {self.task_queue}"
            )
        return f"task queue {self.task_queue}"

    def worker_command(self) -> str:
        """The command that starts a worker able to take this run's tasks."""
        env: list[str] = []
        if self.build_id:
            env.append(f"OPSREADY_BUILD_ID={shlex.quote(self.build_id)}")
            if self.deployment and self.deployment != DEFAULT_DEPLOYMENT:
                env.append(f"OPSREADY_DEPLOYMENT_NAME={shlex.quote(self.deployment)}")
        if self.task_queue != DEFAULT_TASK_QUEUE:
            env.append(f"OPSREADY_TASK_QUEUE={shlex.quote(self.task_queue)}")
        return " ".join([*env, "opsready worker"])


def placement_of(description: WorkflowExecutionDescription) -> Placement:
    info = description.raw_description.workflow_execution_info
    version = info.versioning_info.deployment_version
    return Placement(
        run_id=description.id,
        task_queue=info.task_queue or description.task_queue,
        deployment=version.deployment_name or None,
        build_id=version.build_id or None,
    )


async def has_worker(client: Client, placement: Placement) -> bool:
    """Has a worker that can take the run's tasks polled its task queue lately? (A stopped
    worker stays listed for a while: callers still bound their wait.)"""
    return serves(placement, await workflow_pollers(client, placement.task_queue))


async def workflow_pollers(client: Client, task_queue: str) -> list[PollerInfo] | None:
    """The workflow pollers of a task queue; None when they cannot be read."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    try:
        return list((await client.workflow_service.describe_task_queue(request)).pollers)
    except RPCError:
        return None


def serves(placement: Placement, pollers: list[PollerInfo] | None) -> bool:
    """Whether one of these pollers is a live worker that can take the run's tasks."""
    if pollers is None:
        return True  # cannot tell: let the deadline decide
    fresh_since = datetime.now(UTC) - POLLER_FRESH_FOR
    for poller in pollers:
        seen = poller.last_access_time.ToDatetime(tzinfo=UTC)
        if seen < fresh_since:
            continue
        if placement.build_id is None:
            return True
        options = poller.deployment_options
        if options.build_id == placement.build_id and (
            not placement.deployment or options.deployment_name == placement.deployment
        ):
            return True
    return False


class PendingCall(BaseModel):
    """An activity the run is waiting on: a model or tool call, maybe being retried."""

    activity: str
    what: str
    state: str  # scheduled, started, cancel_requested
    attempt: int
    last_error: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def is_retrying(self) -> bool:
        return self.attempt > 1 or self.last_error is not None


def pending_calls(description: WorkflowExecutionDescription) -> list[PendingCall]:
    calls = []
    for pending in description.raw_description.pending_activities:
        name = pending.activity_type.name
        failure = pending.last_failure.message if pending.HasField("last_failure") else ""
        next_at = (
            pending.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
            if pending.HasField("next_attempt_schedule_time")
            else None
        )
        calls.append(
            PendingCall(
                activity=name,
                what=_WHAT.get(name, name),
                state=PendingActivityState.Name(pending.state)
                .removeprefix("PENDING_ACTIVITY_STATE_")
                .lower(),
                attempt=pending.attempt,
                last_error=failure or None,
                next_attempt_at=next_at,
            )
        )
    return calls
