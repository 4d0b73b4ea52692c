"""`OpsreadyPlugin`: what a Temporal client or worker needs to speak opsready, as one
Temporal plugin (the pydantic converter, tracing, the workflow sandbox's passthrough).

Service code: `await Client.connect(address, plugins=[OpsreadyPlugin()])`. Workers use
`workers.plugin.OpsreadyWorkerPlugin`, which adds the workflows and the activities (they
live above this package, so this module only takes them as arguments).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.trace import Tracer
from temporalio import worker as temporal_worker
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.plugin import SimplePlugin
from temporalio.worker import WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PLUGIN_NAME = "opsready"

# Deterministic modules the workflow sandbox shares between runs instead of re-importing
# them for each one: opsready's workflow package (no I/O, clocks, randomness or module
# state; see docs/decisions.md, "Workflow sandbox") and pydantic with what it imports,
# whose model classes would otherwise be rebuilt on every run.
SANDBOX_PASSTHROUGH = (
    "workflows",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "typing_inspection",
)


def sandbox_restrictions(
    base: SandboxRestrictions = SandboxRestrictions.default,
) -> SandboxRestrictions:
    return base.with_passthrough_modules(*SANDBOX_PASSTHROUGH)


def sandboxed_runner(runner: WorkflowRunner | None) -> WorkflowRunner:
    """The worker's sandboxed runner with opsready's passthrough added; any other runner
    (an unsandboxed one a test chose) as it is."""
    if runner is None:
        return SandboxedWorkflowRunner(restrictions=sandbox_restrictions())
    if isinstance(runner, SandboxedWorkflowRunner):
        return dataclasses.replace(runner, restrictions=sandbox_restrictions(runner.restrictions))
    return runner


def pydantic_converter(existing: DataConverter | None) -> DataConverter:
    """Pydantic payloads; a codec or failure converter already configured is kept."""
    if existing is None or existing is DataConverter.default:
        return pydantic_data_converter
    return dataclasses.replace(existing, payload_converter_class=PydanticPayloadConverter)


class OpsreadyPlugin(SimplePlugin):
    """opsready's Temporal wiring for a client (and a worker or replayer built on it).

    - the pydantic data converter (every opsready payload is a pydantic model);
    - `TracingInterceptor`: a run's trace starts at its starter and continues in workers
      built on this client (`tracer`: default the global OpenTelemetry tracer provider;
      `tracing=False` leaves it out);
    - the workflow sandbox's passthrough of the deterministic modules;
    - `workflows`, `activities` and worker `interceptors`, when a worker passes them in.
    """

    def __init__(
        self,
        *,
        tracer: Tracer | None = None,
        tracing: bool = True,
        workflows: Sequence[type] = (),
        activities: Sequence[Callable[..., Any]] = (),
        interceptors: Sequence[temporal_worker.Interceptor] = (),
    ) -> None:
        tracing_chain = [TracingInterceptor(tracer)] if tracing else []
        super().__init__(
            PLUGIN_NAME,
            data_converter=pydantic_converter,
            interceptors=[*tracing_chain, *interceptors] or None,
            workflows=list(workflows) or None,
            activities=list(activities) or None,
            workflow_runner=sandboxed_runner,
        )
