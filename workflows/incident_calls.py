"""How the `Incident` workflow calls each activity: name, timeouts, retry policy and the
summary the Temporal UI shows. The policies live here, in one place, like `calls.py`."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.contract import Activity, ErrorType
from workflows.incident_payload_types import (
    EvidenceInput,
    EvidenceResult,
    IncidentConfigInput,
    IncidentPolicy,
    IncidentTimings,
    PageReceipt,
    PostmortemInput,
    PostmortemResult,
    RunStepInput,
    StepOutcome,
)
from workflows.incident_types import Page

CONFIG_RETRY = RetryPolicy(
    maximum_attempts=3, non_retryable_error_types=[ErrorType.INVALID_INCIDENT_CONFIG]
)
# A pager that is down or hangs is tried again with backoff (about two minutes in all);
# one that refuses the page (a wrong URL, key or format) is not. Pages run beside the
# incident, never in its way: the workflow goes on escalating and taking updates meanwhile.
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=5,
    non_retryable_error_types=[ErrorType.PAGE_REJECTED],
)
PAGE_TIMEOUT = timedelta(seconds=30)  # per attempt; the HTTP call has its own, shorter limit
STEP_RETRY = RetryPolicy(
    maximum_attempts=3, non_retryable_error_types=[ErrorType.RUNBOOK_STEP_FAILED]
)
# A deployment rollback is not idempotent (a second one goes back one build further): a
# lost reply must not become a second rollback.
ONCE = RetryPolicy(maximum_attempts=1)
ONE_SHOT_ACTIONS = frozenset({"rollback_deployment"})
SIDE_RETRY = RetryPolicy(maximum_attempts=3)


async def load_policy(request: IncidentConfigInput) -> IncidentPolicy:
    policy: IncidentPolicy = await workflow.execute_activity(
        Activity.INCIDENT_CONFIG,
        request,
        result_type=IncidentPolicy,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=CONFIG_RETRY,
        summary=f"incident policy for {request.agent}",
    )
    return policy


async def notify(page: Page) -> PageReceipt:
    receipt: PageReceipt = await workflow.execute_activity(
        Activity.INCIDENT_NOTIFY,
        page,
        result_type=PageReceipt,
        start_to_close_timeout=PAGE_TIMEOUT,
        retry_policy=PAGE_RETRY,
        summary=f"page {page.action} tier {page.tier}: {', '.join(page.targets) or '-'}",
    )
    return receipt


async def run_step(request: RunStepInput) -> StepOutcome:
    step = request.step
    outcome: StepOutcome = await workflow.execute_activity(
        Activity.INCIDENT_RUN_STEP,
        request,
        result_type=StepOutcome,
        start_to_close_timeout=timedelta(seconds=60),
        retry_policy=ONCE if step.action in ONE_SHOT_ACTIONS else STEP_RETRY,
        summary=f"step {step.key} v{step.runbook_version}: {step.action} {step.target}",
    )
    return outcome


async def gather_evidence(request: EvidenceInput) -> EvidenceResult:
    result: EvidenceResult = await workflow.execute_activity(
        Activity.INCIDENT_EVIDENCE,
        request,
        result_type=EvidenceResult,
        start_to_close_timeout=timedelta(minutes=5),
        retry_policy=SIDE_RETRY,
        summary=f"evidence at {request.phase}: {len(request.status.affected_run_ids)} runs",
    )
    return result


async def write_postmortem(request: PostmortemInput) -> PostmortemResult:
    result: PostmortemResult = await workflow.execute_activity(
        Activity.INCIDENT_POSTMORTEM,
        request,
        result_type=PostmortemResult,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=SIDE_RETRY,
        summary="postmortem draft",
    )
    return result


async def record_timings(timings: IncidentTimings) -> None:
    await workflow.execute_activity(
        Activity.INCIDENT_TIMINGS,
        timings,
        start_to_close_timeout=timedelta(seconds=15),
        retry_policy=SIDE_RETRY,
        summary="record MTTD and MTTR",
    )
