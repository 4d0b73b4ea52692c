"""A tenant budget shared by fifty concurrent runs on the dev server, with the worker
killed (SIGKILL) while they run: the ledger never lets the tenant overspend, every model
call a run paid for is counted once, and nothing stays reserved or open."""

from __future__ import annotations

import asyncio
import shutil
import signal
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from opsready.quotas import ledger_view
from opsready.runs import run_result
from opsready.settings import PROJECT_ROOT, Settings
from tests.fakes.worker_process import worker_process
from workers.app import build_activities, build_worker
from workflows.quota_types import QuotaScope, QuotaScopeKind
from workflows.types import AgentRunRequest, AgentRunResult, RunStatus, StopReason

pytestmark = pytest.mark.integration

AGENT = "quota-triage"
QUESTION = "Where is my order A-1003? It was due days ago and it is late."
RUNS = 50
LIMIT_USD = 0.004  # about sixteen runs' worth; fifty start at once


def quota_agent(agents_dir: Path) -> None:
    """The demo agent under another name, with a tenant budget; its data and prices."""
    source = PROJECT_ROOT / "agents"
    shutil.copytree(source / "data", agents_dir / "data")
    shutil.copyfile(source / "pricing.toml", agents_dir / "pricing.toml")
    text = (source / "support-triage.toml").read_text()
    text = text.replace('name = "support-triage"', f'name = "{AGENT}"')
    (agents_dir / f"{AGENT}.toml").write_text(
        f"{text}\n[quotas.tenant]\nper_day_usd = {LIMIT_USD}\n"
    )


@pytest.mark.timeout(150)
async def test_fifty_runs_never_overspend_the_tenant_budget_with_a_worker_killed(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = dev_env.client
    agents_dir, tenant = tmp_path / "agents", f"acme-{uuid.uuid4().hex[:6]}"
    quota_agent(agents_dir)
    settings = Settings(
        agents_dir=agents_dir,
        data_dir=tmp_path / "data",
        task_queue=f"quota-{uuid.uuid4().hex[:8]}",
        worker_versioning=False,
        model_timeout_seconds=2,  # a killed worker's model call is retried within seconds
    )
    env = {
        "OPSREADY_TASK_QUEUE": settings.task_queue,
        "OPSREADY_AGENTS_DIR": str(agents_dir),
        "OPSREADY_DATA_DIR": str(tmp_path / "killed-worker"),
        "OPSREADY_MODEL_TIMEOUT_SECONDS": "2",
    }
    address = client.service_client.config.target_host
    async with worker_process(address, env) as doomed:
        handles = await asyncio.gather(
            *(
                client.start_workflow(
                    "AgentRun",
                    AgentRunRequest(
                        agent=AGENT, input=QUESTION, user_id="customer-17", tenant_id=tenant
                    ),
                    id=f"quota-{i}-{uuid.uuid4().hex[:6]}",
                    task_queue=settings.task_queue,
                    result_type=AgentRunResult,
                )
                for i in range(RUNS)
            )
        )
        # Kill it once some runs ended and others are still under way.
        async with asyncio.timeout(60):
            while True:
                statuses = [(await h.describe()).status for h in handles]
                done = sum(s is not WorkflowExecutionStatus.RUNNING for s in statuses)
                if done >= 5:
                    break
                await asyncio.sleep(0.1)
        assert done < RUNS, "every run ended before the worker could be killed"
        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()

    activities = build_activities(settings)
    async with build_worker(client, settings, activities=activities):
        results = await asyncio.wait_for(asyncio.gather(*(run_result(h) for h in handles)), 100)
        view = await ledger_view(
            client, settings.task_queue, QuotaScope(kind=QuotaScopeKind.TENANT, id=tenant)
        )

    ledger = view.state
    assert ledger.spent_day_usd <= LIMIT_USD
    # Every model call a run paid for is in the ledger once: none lost, none doubled.
    assert round(sum(r.usage.cost_usd for r in results), 6) == ledger.spent_day_usd
    assert ledger.reservations == [] and ledger.open_runs == []
    ends = {(r.status, r.stop_reason) for r in results}
    assert ends == {
        (RunStatus.COMPLETED, StopReason.ANSWERED),
        (RunStatus.BUDGET_EXCEEDED, StopReason.QUOTA_EXCEEDED),
    }, ends
    refused = next(r for r in results if r.stop_reason is StopReason.QUOTA_EXCEEDED)
    assert f"quota exceeded: tenant {tenant}: $" in (refused.reason or "")
