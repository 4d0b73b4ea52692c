"""Shadow runs: a production run's twin with a candidate prompt or model.

The twin is a child `AgentRun` (abandoned when its parent closes, so it never delays or
fails the user's run) whose write and destructive tools are simulated. When production
ends it sends the twin its summary (signal `production_result`); the twin then compares
the two (an activity) and keeps the comparison in its state and result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

from workflows import calls, visibility
from workflows.contract import AGENT_RUN_WORKFLOW, SafetyKind, Signal
from workflows.payloads import CompareShadowInput, RunConfig
from workflows.run_record import RunRecord
from workflows.types import AgentRunRequest, Candidate, ComparedRun, ShadowComparison, ShadowOrigin


def twin_id(run_id: str) -> str:
    return f"{run_id}-shadow"


async def start_twin(request: AgentRunRequest, candidate: Candidate) -> str:
    """Start the twin: same input and user, the candidate; raises when it cannot start."""
    run_id = workflow.info().workflow_id
    await workflow.start_child_workflow(
        AGENT_RUN_WORKFLOW,
        request.model_copy(
            update={
                "request_id": None,
                "shadow_of": ShadowOrigin(run_id=run_id, candidate=candidate),
            }
        ),
        id=twin_id(run_id),
        parent_close_policy=ParentClosePolicy.ABANDON,
        static_summary=f"shadow of {run_id}: {candidate.label()}",
    )
    return twin_id(run_id)


async def tell_twin(shadow_run_id: str, summary: ComparedRun) -> None:
    try:
        await workflow.get_external_workflow_handle(shadow_run_id).signal(
            Signal.PRODUCTION_RESULT, summary
        )
    except ApplicationError as err:
        workflow.logger.warning("shadow %s not told of the result: %s", shadow_run_id, err)


async def compare(
    agent: str, origin: ShadowOrigin, production: ComparedRun, shadow: ComparedRun
) -> ShadowComparison | None:
    try:
        return await calls.compare_shadow(
            CompareShadowInput(
                agent=agent, candidate=origin.candidate, production=production, shadow=shadow
            )
        )
    except ActivityError as err:
        workflow.logger.warning("shadow comparison failed: %s", calls.cause(err))
        return None


async def start(record: RunRecord, candidate: Candidate) -> None:
    """Production: start the twin; one that cannot start is a safety event, never a failure."""
    try:
        record.state.shadow_run_id = await start_twin(record.request, candidate)
    except (ChildWorkflowError, ApplicationError) as err:
        record.safety(SafetyKind.SHADOW_NOT_STARTED, str(err))


async def after_end(
    record: RunRecord, config: RunConfig | None, production: Callable[[], ComparedRun | None]
) -> None:
    """Production: tell the twin how this run ended. Shadow: wait for production's summary
    (`production`, set by the `production_result` signal) and keep the comparison."""
    summary = visibility.compared_run(workflow.info().workflow_id, record.state, workflow.now())
    if record.state.shadow_run_id is not None:
        await tell_twin(record.state.shadow_run_id, summary)
    origin = record.request.shadow_of
    if origin is None or config is None:
        return
    with contextlib.suppress(TimeoutError):
        await workflow.wait_condition(
            lambda: production() is not None,
            timeout=config.budgets.run_timeout_seconds,
            timeout_summary="production result timeout",
        )
    twin_of = production()
    if twin_of is None:
        workflow.logger.warning("shadow: the production result never came")
        return
    comparison = await compare(config.agent, origin, twin_of, summary)
    if comparison is not None:
        record.state.shadow_comparison = comparison
        record.upsert_visibility()
