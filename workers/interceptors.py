"""The correlation interceptor: binds the fields every log line of an activity or a
workflow carries (run id, Temporal run id, agent, step, activity type and attempt, user,
tenant) into structlog's contextvars, so no function binds them by hand. Trace and span
ids are added per line from the current OpenTelemetry span (opsready.logs)."""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)


def _get(value: Any, name: str) -> Any:
    """A field of a payload: a model, or the plain JSON object `AgentRun` itself receives
    (it validates its request in workflow code, workflows.inputs)."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _run_fields(arg: Any) -> dict[str, Any]:
    """What an opsready activity or workflow input says about its run."""
    context = _get(arg, "context")
    fields = {
        "agent": _get(arg, "agent"),
        "user_id": _get(context or arg, "user_id"),
        "tenant_id": _get(context or arg, "tenant_id"),
        "variant": _get(context, "variant"),
        "build_id": _get(context, "build_id"),
        "agent_version": _get(context, "agent_version"),
    }
    return {key: value for key, value in fields.items() if isinstance(value, str) and value}


class _ActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        arg = input.args[0] if input.args else None
        fields: dict[str, Any] = {
            "run_id": info.workflow_id,
            "temporal_run_id": info.workflow_run_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
            **_run_fields(arg),
        }
        step = getattr(arg, "step", None)
        if step is None:  # an approval notice, or the run's outcome (its last step)
            step = getattr(getattr(arg, "approval", None), "step", None)
            step = getattr(arg, "steps", None) if step is None else step
        if step is not None:
            fields["step"] = step
        tokens = structlog.contextvars.bind_contextvars(**fields)
        try:
            return await self.next.execute_activity(input)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


class _WorkflowInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        # Runs inside the workflow's task: the binding reaches every line the run logs
        # (workflow.logger, which is silent during replay). Binding has no effect on the
        # commands the workflow emits, so it is safe for determinism.
        info = workflow.info()
        structlog.contextvars.bind_contextvars(
            run_id=info.workflow_id,
            temporal_run_id=info.run_id,
            **_run_fields(input.args[0] if input.args else None),
        )
        return await self.next.execute_workflow(input)


class CorrelationInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _WorkflowInbound
