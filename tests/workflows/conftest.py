"""One worker on the time-skipping server for the workflow tests, with test agents."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.workflowservice.v1 import ListOpenWorkflowExecutionsRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.models.local import LocalProvider
from activities.tools.ledger import Ledger
from activities.tools.registry import Tool
from activities.tools.support import support_tools
from opsready.settings import PROJECT_ROOT, Settings
from tests.conftest import write_agent
from tests.fakes.scripted import (
    ACCOUNT_PROFILE,
    CLOSE_ACCOUNT,
    STATUS_PAGE,
    GatedProvider,
    Script,
    ScriptedProvider,
)
from workers.app import build_activities, build_worker
from workflows.contract import Query
from workflows.types import AgentRunRequest, AgentRunResult, AgentRunState

TESTER = """
name = "{name}"
version = "7.0.0"
model = "scripted/test"
prompt_version = "v2"

[prompts.v2]
system = "You are a test agent."

[budgets]
max_steps = {max_steps}
max_total_tokens = {max_tokens}
max_cost_usd = {max_cost}
run_timeout_seconds = {run_timeout}
continue_as_new_after_events = {can_events}

[approval]
approvers = ["alice", "bob"]
escalate_to = ["lead"]
timeout_seconds = 600
escalation_timeout_seconds = 300

[tools.search_kb]
[tools.lookup_order]
[tools.refund_order]
approval = "over_threshold"
threshold_field = "amount_usd"
threshold = 50
[tools.close_account]
"""

# Tables appended to an agent's TOML (controls: quotas, guardrails, breakers, limits...).
EXTRA: dict[str, str] = {
    "tester-quota": "[quotas.tenant]\nper_day_usd = 0.05\n",
    "tester-open-runs": "[quotas.user]\nmax_open_runs = 1\n",
    "tester-quota-approval": (
        '[quotas]\non_exceeded = "require_approval"\n[quotas.tenant]\nper_day_usd = 0.0001\n'
    ),
    "tester-gated": "[quotas.tenant]\nper_day_usd = 1.0\n",
    "tester-guarded": """
[tools.account_profile]
[tools.refund_order.limits]
amount_usd = 100
[guardrails.input.size_limit]
max_chars = 300
[guardrails.input.prompt_injection]
[guardrails.input.pii_secrets]
action = "mask"
[guardrails.output.leak]
[guardrails.output.forbidden_content]
words = ["guarantee"]
action = "review"
[guardrails.output.refund_grounding]
""",
    "tester-strict": '[guardrails.input.pii_secrets]\naction = "block"\n',
    "tester-chain": '[tools.status_page]\n[breakers]\non_model_open = "escalate"\n',
}
# Top-level keys of an agent's TOML (before its first table).
TOP: dict[str, str] = {
    "tester-chain": 'fallback_models = ["scripted/second", "scripted/backup"]',
}
# Agents that do not fit the template: read-only, answer cache on.
CUSTOM: dict[str, str] = {
    "tester-cached": """
name = "tester-cached"
version = "1.0.0"
model = "scripted/test"
prompt_version = "v1"
[prompts.v1]
system = "You answer questions."
[tools.search_kb]
[answer_cache]
enabled = true
ttl_seconds = 600
""",
}
AGENTS: dict[str, dict[str, Any]] = {
    "tester": {},
    "tester-quota": {"max_steps": 6},
    "tester-open-runs": {},
    "tester-quota-approval": {},
    "tester-gated": {"model": "gated/test"},
    "tester-guarded": {},
    "tester-strict": {},
    "tester-chain": {},
    "tester-cheap": {"max_cost": 0.0003},
    "tester-tokens": {"max_tokens": 250},
    "tester-can": {"max_steps": 20, "can_events": 12},
    "tester-timeout": {"run_timeout": 60},
}
DEFAULTS = {
    "max_steps": 4,
    "max_tokens": 100000,
    "max_cost": 1.0,
    "run_timeout": 86400,
    "can_events": 5000,
}


def tester_toml(name: str, **overrides: Any) -> str:
    """A test agent: the template with its budgets, model, top-level keys and tables."""
    values = {**DEFAULTS, **overrides}
    model = values.pop("model", "scripted/test")
    toml = TESTER.format(name=name, **values)
    toml = toml.replace('model = "scripted/test"', f'model = "{model}"')
    return f"{TOP.get(name, '')}\n{toml}{EXTRA.get(name, '')}"


def harness_tools(*extra: Tool) -> list[Tool]:
    """The demo's tools, a destructive `close_account`, a profile that holds secrets, and
    any extra tools."""
    return [
        *support_tools(PROJECT_ROOT / "agents" / "data" / "support-triage"),
        CLOSE_ACCOUNT,
        ACCOUNT_PROFILE,
        STATUS_PAGE,
        *extra,
    ]


@dataclass
class Harness:
    env: WorkflowEnvironment
    client: Client
    task_queue: str
    scripted: ScriptedProvider
    ledger: Ledger
    gated: GatedProvider

    def script(self, text: str, script: Script) -> str:
        """Register a scenario; returns the unique input text that selects it."""
        key = f"{text} [{uuid.uuid4().hex[:6]}]"
        self.scripted.scripts[key] = script
        self.gated.scripts[key] = script
        return key

    async def start(
        self,
        agent: str,
        text: str,
        user_id: str | None = "customer-17",
        tenant_id: str | None = None,
    ) -> WorkflowHandle[Any, AgentRunResult]:
        return await self.client.start_workflow(
            "AgentRun",
            AgentRunRequest(agent=agent, input=text, user_id=user_id, tenant_id=tenant_id),
            id=f"test-{agent}-{uuid.uuid4().hex[:8]}",
            task_queue=self.task_queue,
            result_type=AgentRunResult,
        )

    async def wait_for(
        self,
        handle: WorkflowHandle[Any, AgentRunResult],
        predicate: Callable[[AgentRunState], bool],
        timeout: float = 20,
    ) -> AgentRunState:
        """Poll the `state` query until `predicate` holds (a condition, not a sleep)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await handle.query(Query.STATE, result_type=AgentRunState)
            if predicate(state):
                return state
            if loop.time() > deadline:
                raise AssertionError(f"condition not met; last state: {state.status}")
            await asyncio.sleep(0.05)

    async def wait_for_status(
        self, handle: WorkflowHandle[Any, AgentRunResult], status: str, timeout: float = 20
    ) -> AgentRunState:
        return await self.wait_for(handle, lambda state: state.status == status, timeout)


async def end_open_workflows(client: Client, task_queue: str) -> None:
    """Terminate what a module left running on its task queue. The time-skipping server
    moves its clock only while no task is outstanding: a timer of a run whose worker has
    gone (an approval or escalation timeout, an incident's ack deadline) would otherwise
    fire into a queue nobody polls and hold every later module's clock still. That server
    has no visibility queries; it lists open executions (without their task queue)."""
    request = ListOpenWorkflowExecutionsRequest(namespace=client.namespace, maximum_page_size=1000)
    while True:
        page = await client.workflow_service.list_open_workflow_executions(request)
        for info in page.executions:
            handle = client.get_workflow_handle(info.execution.workflow_id)
            try:
                description = await handle.describe()
                config = description.raw_description.execution_config
                if config.task_queue.name == task_queue:
                    await handle.terminate(reason="test module ended")
            except RPCError:
                pass  # ended meanwhile
        if not page.next_page_token:
            return
        request.next_page_token = page.next_page_token


@asynccontextmanager
async def open_harness(env: WorkflowEnvironment, root: Path) -> AsyncIterator[Harness]:
    """A worker with the test agents on `env`, on a task queue of its own; what it leaves
    running is terminated when it closes."""
    agents_dir = root / "agents"
    for name, overrides in AGENTS.items():
        write_agent(agents_dir, name, tester_toml(name, **overrides))
    for name, toml in CUSTOM.items():
        write_agent(agents_dir, name, toml)
    (agents_dir / "support-triage.toml").write_text(
        (PROJECT_ROOT / "agents" / "support-triage.toml").read_text()
    )
    settings = Settings(
        agents_dir=agents_dir,
        data_dir=root / "data",
        task_queue=f"wf-{uuid.uuid4().hex[:8]}",
        worker_versioning=False,  # the time-skipping server has no Worker Deployments
    )
    scripted, gated = ScriptedProvider({}), GatedProvider({})
    activities = build_activities(
        settings,
        providers={"scripted": scripted, "local": LocalProvider(), "gated": gated},
        tools=harness_tools(),
    )
    async with build_worker(env.client, settings, activities=activities):
        yield Harness(
            env,
            env.client,
            settings.task_queue,
            scripted,
            Ledger(settings.data_dir / "side_effects.sqlite"),
            gated,
        )
        await end_open_workflows(env.client, settings.task_queue)


@pytest.fixture(scope="module")
async def harness(
    time_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Harness]:
    async with open_harness(time_env, tmp_path_factory.mktemp("wf")) as harness:
        yield harness
