"""Shadow runs: a production run's twin with a candidate prompt or model.

The twin is a child `AgentRun` (abandoned when its parent closes, so it never delays or
fails the user's run) whose write and destructive tools are simulated. When production
ends it sends the twin its summary (signal `production_result`); the twin then compares
the two (an activity) and keeps the comparison in its state and result.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

from workflows import calls
from workflows.contract import AGENT_RUN_WORKFLOW, Signal
from workflows.payloads import CompareShadowInput
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
