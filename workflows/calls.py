"""How `AgentRun` calls each activity: name, timeouts, retry policy and UI summary.

Kept apart from the run's logic so the policies are in one place. Activities are called
by their stable names (workflows/activity_names.py), never by importing implementations.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

from workflows.contract import Activity, ErrorType
from workflows.control_types import (
    AnswerLookup,
    AnswerLookupResult,
    AnswerStore,
    QuotaCall,
    QuotaCallResult,
)
from workflows.payloads import (
    CloseHaltedInput,
    CompareShadowInput,
    KillSwitchCheck,
    KillSwitchInput,
    ModelCallInput,
    ModelCallResult,
    ModelRetryBudget,
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
_MODEL_NON_RETRYABLE = [ErrorType.MODEL_REQUEST_REJECTED, ErrorType.UNKNOWN_MODEL_PROVIDER]
MODEL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
    non_retryable_error_types=_MODEL_NON_RETRYABLE,
)
# A model's calls heartbeat every second: a dead worker's call is retried, and a halt's
# cancellation reaches the HTTP call, within this (or the call's timeout, if shorter).
MODEL_HEARTBEAT = timedelta(seconds=10)
TOOL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[ErrorType.UNKNOWN_TOOL],
)
SIDE_RETRY = RetryPolicy(maximum_attempts=3)
KILL_SWITCH_TIMEOUT = timedelta(seconds=5)
KILL_SWITCH_RETRY = SIDE_RETRY
# The ledgers are Temporal workflows: a failure is the cluster or a worker restarting, so
# retry for a while before the run gives up on the quota check (and refuses the call).
QUOTA_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=5),
    maximum_attempts=8,
)


def cause(err: ActivityError) -> str:
    """The innermost message of an activity failure: what actually went wrong."""
    return str(_innermost(err))


def _innermost(err: ActivityError) -> BaseException:
    inner = err.cause
    while isinstance(inner, ActivityError) and inner.cause is not None:
        inner = inner.cause
    return inner or err


def error_type(err: ActivityError) -> str | None:
    """The `ApplicationError.type` an activity failed with (`ErrorType`), if it has one."""
    return getattr(_innermost(err), "type", None)


TOOL_TIMED_OUT = "tool timed out: "


def tool_failure(err: ActivityError) -> str:
    """A tool call's error once its activity failed for good: `tool timed out: ...` when the
    last attempt timed out (SLIs count timeouts apart from errors), else `tool failed: ...`."""
    inner = _innermost(err)
    return (
        f"{TOOL_TIMED_OUT if isinstance(inner, ActivityTimeoutError) else 'tool failed: '}{inner}"
    )


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


def model_retry(budget: ModelRetryBudget | None) -> RetryPolicy:
    """The retry policy of one model call: the full policy for the last model, else one
    bounded by its budget, where a timed-out attempt is not retried (the fallback is the
    retry). Backoff and its jitter come from the activity (`next_retry_delay`): Temporal's
    policy has no jitter, so its intervals here only pace failures the activity cannot
    report (a lost worker)."""
    if budget is None:
        return MODEL_RETRY
    return RetryPolicy(
        initial_interval=timedelta(seconds=0.5),
        maximum_interval=timedelta(seconds=max(budget.max_seconds, 0.5)),
        maximum_attempts=budget.max_attempts,
        non_retryable_error_types=[*_MODEL_NON_RETRYABLE, ErrorType.MODEL_TIMEOUT],
    )


async def chat(
    request: ModelCallInput, timeout_seconds: float, task_queue: str | None = None
) -> ModelCallResult:
    """One model turn. The provider cuts a hanging call at `timeout_seconds`; the activity's
    own limit is a little longer, so the provider's clearer error arrives first. A model with
    a budget (`request.fallback_after`) also stops retrying when the budget is spent, via
    the activity (which knows its attempts' times) and, as a backstop, schedule-to-close.
    `task_queue`: the provider's own, rate-limited queue when it has one (time waiting there
    counts against the budget: a provider saturated by our own limit is one to fall back
    from)."""
    budget = request.fallback_after
    timeout = timedelta(seconds=timeout_seconds + 5)
    turn: ModelCallResult = await workflow.execute_activity(
        Activity.MODEL_CHAT,
        request,
        task_queue=task_queue,
        result_type=ModelCallResult,
        start_to_close_timeout=timeout,
        schedule_to_close_timeout=(
            None if budget is None else timeout + timedelta(seconds=budget.max_seconds)
        ),
        heartbeat_timeout=min(timeout, MODEL_HEARTBEAT),
        retry_policy=model_retry(budget),
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
        start_to_close_timeout=KILL_SWITCH_TIMEOUT,
        retry_policy=KILL_SWITCH_RETRY,
        summary=f"kill switch {request.tool or request.agent}",
    )
    return check


async def close_halted(request: CloseHaltedInput) -> None:
    await workflow.execute_activity(
        Activity.CLOSE_HALTED,
        request,
        start_to_close_timeout=timedelta(seconds=15),
        retry_policy=SIDE_RETRY,
        summary="close as cancelled (halted)",
    )


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
