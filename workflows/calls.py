"""How `AgentRun` calls each activity: name, timeouts, retry policy and UI summary.

Kept apart from the run's logic so the policies are in one place. Activities are called
by their stable names (workflows/activity_names.py), never by importing implementations.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.contract import Activity, ErrorType
from workflows.control_types import (
    AnswerLookup,
    AnswerLookupResult,
    AnswerStore,
    QuotaCall,
    QuotaCallResult,
)
from workflows.payloads import (
    CompareShadowInput,
    KillSwitchCheck,
    KillSwitchInput,
    ModelCallInput,
    ModelCallResult,
    NotifyApproversInput,
    ResolveConfigInput,
    RunConfig,
    RunOutcome,
    ToolCallInput,
    ToolCallResult,
)
from workflows.types import ShadowComparison

CONFIG_RETRY = RetryPolicy(
    maximum_attempts=3,
    non_retryable_error_types=[ErrorType.UNKNOWN_AGENT, ErrorType.INVALID_AGENT_DEFINITION],
)
MODEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=[ErrorType.MODEL_REQUEST_REJECTED, ErrorType.UNKNOWN_MODEL_PROVIDER],
)
TOOL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[ErrorType.UNKNOWN_TOOL],
)
SIDE_RETRY = RetryPolicy(maximum_attempts=3)
# The ledgers are Temporal workflows: a failure is the cluster or a worker restarting, so
# retry for a while before the run gives up on the quota check (and refuses the call).
QUOTA_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=8,
)


def error_type(err: ActivityError) -> str | None:
    """The `ApplicationError.type` an activity failed with (`ErrorType`), if it has one."""
    inner = err.cause
    while isinstance(inner, ActivityError) and inner.cause is not None:
        inner = inner.cause
    return getattr(inner, "type", None)


def cause(err: ActivityError) -> str:
    """The innermost message of an activity failure: what actually went wrong."""
    inner = err.cause
    while isinstance(inner, ActivityError) and inner.cause is not None:
        inner = inner.cause
    return str(inner or err)


async def resolve_config(request: ResolveConfigInput) -> RunConfig:
    config: RunConfig = await workflow.execute_activity(
        Activity.RESOLVE_CONFIG,
        request,
        result_type=RunConfig,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=CONFIG_RETRY,
        summary=f"config {request.agent}",
    )
    return config


async def chat(
    request: ModelCallInput, timeout_seconds: float, task_queue: str | None = None
) -> ModelCallResult:
    """`task_queue`: the provider's own, rate-limited queue when it has one."""
    turn: ModelCallResult = await workflow.execute_activity(
        Activity.MODEL_CHAT,
        request,
        task_queue=task_queue,
        result_type=ModelCallResult,
        start_to_close_timeout=timedelta(seconds=timeout_seconds + 5),
        retry_policy=MODEL_RETRY,
        summary=f"model {request.model.model} (step {request.step})",
    )
    return turn


async def run_tool(
    request: ToolCallInput, timeout_seconds: float, task_queue: str | None = None
) -> ToolCallResult:
    timeout = timedelta(seconds=timeout_seconds)
    tier = request.risk_tier.value if request.risk_tier else "?"
    result: ToolCallResult = await workflow.execute_activity(
        Activity.TOOL_RUN,
        request,
        task_queue=task_queue,
        result_type=ToolCallResult,
        start_to_close_timeout=timeout,
        # Tools heartbeat every second: a dead worker's call is retried, and a halt's
        # cancellation reaches the tool, within seconds.
        heartbeat_timeout=min(timeout, timedelta(seconds=10)),
        retry_policy=TOOL_RETRY,
        summary=f"tool {request.tool} ({tier})" + (" simulated" if request.simulate else ""),
    )
    return result


async def notify_approvers(request: NotifyApproversInput) -> None:
    await workflow.execute_activity(
        Activity.NOTIFY_APPROVERS,
        request,
        start_to_close_timeout=timedelta(seconds=15),
        retry_policy=SIDE_RETRY,
        summary="escalate approval" if request.is_escalation else "notify approvers",
    )


async def record_outcome(outcome: RunOutcome) -> None:
    await workflow.execute_activity(
        Activity.RECORD_OUTCOME,
        outcome,
        start_to_close_timeout=timedelta(seconds=15),
        retry_policy=SIDE_RETRY,
        summary="record outcome",
    )


async def check_kill_switch(request: KillSwitchInput) -> KillSwitchCheck:
    """An in-memory flag evaluation before every call: a local activity, so it costs no
    task-queue round trip and one marker event in the history."""
    check: KillSwitchCheck = await workflow.execute_local_activity(
        Activity.CHECK_KILL_SWITCH,
        request,
        result_type=KillSwitchCheck,
        start_to_close_timeout=timedelta(seconds=5),
        retry_policy=SIDE_RETRY,
        summary=f"kill switch {request.tool or request.agent}",
    )
    return check


async def compare_shadow(request: CompareShadowInput) -> ShadowComparison:
    comparison: ShadowComparison = await workflow.execute_activity(
        Activity.COMPARE_SHADOW,
        request,
        result_type=ShadowComparison,
        start_to_close_timeout=timedelta(seconds=15),
        retry_policy=SIDE_RETRY,
        summary="compare with production",
    )
    return comparison


async def apply_quota(call: QuotaCall, summary: str) -> QuotaCallResult:
    result: QuotaCallResult = await workflow.execute_activity(
        Activity.QUOTA_APPLY,
        call,
        result_type=QuotaCallResult,
        # An update round trip per ledger: a dead worker's call is retried within seconds.
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=QUOTA_RETRY,
        summary=summary,
    )
    return result


async def lookup_answer(request: AnswerLookup) -> AnswerLookupResult:
    result: AnswerLookupResult = await workflow.execute_activity(
        Activity.ANSWER_CACHE_LOOKUP,
        request,
        result_type=AnswerLookupResult,
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=SIDE_RETRY,
        summary="answer cache lookup",
    )
    return result


async def store_answer(request: AnswerStore) -> None:
    await workflow.execute_activity(
        Activity.ANSWER_CACHE_STORE,
        request,
        start_to_close_timeout=timedelta(seconds=10),
        retry_policy=SIDE_RETRY,
        summary="answer cache store",
    )
