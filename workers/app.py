"""Wiring of one worker: the workflows, the activities and their dependencies, carried by
one Temporal plugin (`OpsreadyWorkerPlugin`), and `build_worker` for opsready's processes.

Service code runs a worker in two lines:

    client = await Client.connect(address, plugins=[OpsreadyPlugin()])
    worker = Worker(client, task_queue=settings.task_queue,
                    plugins=[OpsreadyWorkerPlugin(settings)])

`OpsreadyWorkerPlugin` is `opsready.OpsreadyPlugin` (converter, sandbox passthrough) plus
what only a worker has: the workflows, the activities, the correlation interceptor, the
outcome recorder (workers.outcome_recorder) and
Worker Versioning (the deployment from the settings; without versioning,
`UnversionedWorkflows`). Tracing comes from the client: a worker built on a client
connected with `OpsreadyPlugin` continues the starter's traces (a second tracing
interceptor here would record every span twice).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker, WorkerConfig

from activities.answers import AnswerCache
from activities.breakers import BreakerGuard
from activities.config import ConfigActivities
from activities.flags import FlagActivities, FlagClient, shared_flag_client
from activities.incident_evidence import EvidenceActivities
from activities.incident_steps import RunbookActions
from activities.incidents import IncidentActivities
from activities.models.activity import ModelActivities
from activities.models.base import ModelProvider
from activities.models.local import LocalProvider
from activities.notify import NotifyActivities
from activities.outcomes import OutcomeStore
from activities.pacing import Pacer
from activities.quotas import QuotaActivities
from activities.rollout import RolloutActivities
from activities.runs import close_halted
from activities.shadow import ShadowActivities
from activities.slo import SloActivities
from activities.tools.activity import ToolActivities
from activities.tools.effects import effect_ledger
from activities.tools.ledger import Ledger
from activities.tools.registry import Tool, ToolRegistry
from activities.tools.secrets import SecretStore, check_tool_secrets
from activities.tools.support import support_tools
from opsready.plugin import OpsreadyPlugin
from opsready.settings import Settings
from opsready.telemetry import Telemetry
from workers.interceptors import CorrelationInterceptor
from workers.outcome_recorder import OutcomeRecorder, outcome_store_of
from workers.versioning import UnversionedWorkflows, deployment_config, is_versioned
from workflows.agent_run import AgentRunWorkflow
from workflows.canary_rollout import CanaryRolloutWorkflow
from workflows.circuit_breaker import CircuitBreakerWorkflow
from workflows.contract import activity_queue
from workflows.incident import IncidentWorkflow
from workflows.quota_ledger import QuotaLedgerWorkflow
from workflows.side_effect import SideEffectWorkflow
from workflows.slo_monitor import SloMonitorWorkflow

WORKFLOWS: list[type] = [
    AgentRunWorkflow,
    CanaryRolloutWorkflow,
    IncidentWorkflow,
    SloMonitorWorkflow,
    QuotaLedgerWorkflow,
    CircuitBreakerWorkflow,
    SideEffectWorkflow,
]


def default_tools(settings: Settings) -> list[Tool]:
    return support_tools(settings.agents_dir / "data" / "support-triage")


def default_providers(
    settings: Settings, telemetry: Telemetry | None = None
) -> dict[str, ModelProvider]:
    from activities.models.openai_compat import OpenAICompatProvider

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return {
        "local": LocalProvider(),
        "openai": OpenAICompatProvider(
            base_url=settings.openai_base_url,
            api_key=key,
            timeout_seconds=settings.model_timeout_seconds,
            tracer=telemetry.tracer if telemetry else None,
        ),
    }


def build_activities(
    settings: Settings,
    *,
    providers: Mapping[str, ModelProvider] | None = None,
    tools: Sequence[Tool] | None = None,
    namespace: str = "default",
    telemetry: Telemetry | None = None,
    flags: FlagClient | None = None,
    secrets: SecretStore | None = None,
) -> list[Callable[..., Any]]:
    """Every activity a worker runs. Raises ConfigError when an agent enables a tool whose
    declared secret is missing (the worker must not start)."""
    registry = ToolRegistry(default_tools(settings) if tools is None else tools)
    secrets = secrets or SecretStore.load(settings)
    check_tool_secrets(settings.agents_dir, registry.tools(), secrets)
    telemetry = telemetry or Telemetry.create()
    flags = flags or shared_flag_client(settings)
    ledger = Ledger(settings.data_dir / "side_effects.sqlite")
    breakers = (
        BreakerGuard(settings.task_queue, settings.breaker_config) if settings.breakers else None
    )
    # Calls on a rate-limited queue are also spaced evenly within this process.
    pacer = Pacer(
        {activity_queue(settings.task_queue, n): r for n, r in settings.rate_limits.items()}
    )
    models = ModelActivities(
        default_providers(settings, telemetry) if providers is None else providers,
        registry,
        telemetry,
        breakers,
        pacer,
        flags,
    )
    tool_activities = ToolActivities(
        registry,
        ledger,
        telemetry,
        flags,
        effects=effect_ledger(settings, ledger),
        secrets=secrets,
        breakers=breakers,
        pacer=pacer,
    )
    answers = AnswerCache(settings.data_dir / "answers.sqlite")
    notify = NotifyActivities(settings.approval_webhook_url, settings.ui_url, namespace, telemetry)
    outcomes = OutcomeStore(settings.data_dir / "outcomes.sqlite", telemetry)
    # Canary gates and SLIs read Temporal visibility with the worker's own client.
    rollout = RolloutActivities(settings)
    slo = SloActivities(settings)
    incidents = IncidentActivities(settings, telemetry, namespace)
    return [
        ConfigActivities(settings, registry, flags).resolve_config,
        FlagActivities(flags).check_kill_switch,
        ShadowActivities().compare_shadow,
        models.chat,
        tool_activities.run_tool,
        QuotaActivities(settings.task_queue).apply,
        answers.lookup,
        answers.store,
        notify.notify_approvers,
        outcomes.record_outcome,
        rollout.set_percent,
        rollout.set_deployment_ramp,  # with the worker's own client (`activity.client()`)
        rollout.compare_cohorts,
        slo.read_slis,
        slo.affected_runs,
        incidents.open_incident,  # the SLO monitor's way in (workflow client: `activity.client()`)
        incidents.load_policy,
        incidents.notify,
        incidents.write_postmortem,
        incidents.record_timings,
        RunbookActions(settings).run_step,
        EvidenceActivities(settings).gather_evidence,
        close_halted,  # with the worker's own client, like the ramp
    ]


class OpsreadyWorkerPlugin(OpsreadyPlugin):
    """opsready's workflows and activities for a worker; `activities` replaces the real
    ones (tests, benches); `correlation=False` leaves log correlation out (the bench's
    telemetry-off side)."""

    def __init__(
        self,
        settings: Settings,
        *,
        activities: Sequence[Callable[..., Any]] | None = None,
        workflows: Sequence[type] = WORKFLOWS,
        correlation: bool = True,
    ) -> None:
        super().__init__(
            tracing=False,
            workflows=workflows,
            activities=activities or (),
            interceptors=[CorrelationInterceptor()] if correlation else [],
        )
        self.settings = settings
        self._builds_activities = activities is None

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        config = super().configure_worker(config)
        if self._builds_activities:
            # Built here rather than in __init__: approval links need the client's namespace.
            built = build_activities(self.settings, namespace=config["client"].namespace)
            config["activities"] = [*config.get("activities", []), *built]
        store = outcome_store_of(config.get("activities", []))
        if store is not None:
            config["interceptors"] = [*config.get("interceptors", []), OutcomeRecorder(store)]
        if config.get("deployment_config") is None:
            config["deployment_config"] = deployment_config(self.settings)
        if not is_versioned(config.get("deployment_config")):
            config["interceptors"] = [*config.get("interceptors", []), UnversionedWorkflows()]
        return config


def build_worker(
    client: Client,
    settings: Settings,
    *,
    task_queue: str | None = None,
    activities: Sequence[Callable[..., Any]] | None = None,
    correlation: bool = True,
    **worker_options: Any,
) -> Worker:
    """A worker on the settings' task queue and limits, wired by `OpsreadyWorkerPlugin`;
    `worker_options` go to `Worker` as they are (identity, deployment_config...)."""
    plugin = OpsreadyWorkerPlugin(settings, activities=activities, correlation=correlation)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        plugins=[plugin],
        **{**worker_limits(settings), **worker_options},
    )


# Workflow task slots per core. A workflow task holds its slot from the poll to the
# completion; Python runs them one at a time (the GIL), so more slots than the cores can
# turn over only queue tasks inside the worker, where their start-to-close timeout runs
# (the livelock of issue 13), and fewer leave cached runs' tasks waiting on the sticky
# queue past its schedule-to-start timeout; a mass halt needs enough to turn over 100 runs
# in time. Measured on 2 cores (bench burst, bench kill-switch): docs/decisions.md, "Worker
# slots".
WORKFLOW_TASK_SLOTS_PER_CORE = 8


def cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_limits(settings: Settings) -> dict[str, Any]:
    """How much one worker takes on at once (`Worker` arguments): fixed slot counts."""
    workflow_tasks = settings.max_concurrent_workflow_tasks or max(
        2, WORKFLOW_TASK_SLOTS_PER_CORE * cores()
    )
    return {
        "max_cached_workflows": settings.max_cached_workflows,
        "max_concurrent_workflow_tasks": workflow_tasks,
        "max_concurrent_activities": settings.max_concurrent_activities,
    }


def describe_limits(settings: Settings) -> str:
    """The worker's slot settings in one line, for its start-up log and the benches."""
    limits = worker_limits(settings)
    return ", ".join(f"{key} {value}" for key, value in limits.items())


def rate_limited_workers(
    client: Client, settings: Settings, activities: Sequence[Callable[..., Any]]
) -> list[Worker]:
    """One activity worker per rate-limited provider or tool (`OPSREADY_RATE_LIMITS`), each
    on its own task queue with Temporal's task-queue rate limit: a burst waits in Temporal
    instead of tripping the provider's 429s. Run them beside the main worker."""
    return [
        Worker(
            client,
            task_queue=activity_queue(settings.task_queue, name),
            activities=list(activities),
            interceptors=[CorrelationInterceptor()],
            max_concurrent_activities=settings.max_concurrent_activities,
            max_task_queue_activities_per_second=rate,
            # Same deployment version as the main worker: a pinned run's activities on this
            # queue go to workers of the build that runs it.
            deployment_config=deployment_config(settings),
        )
        for name, rate in sorted(settings.rate_limits.items())
    ]
