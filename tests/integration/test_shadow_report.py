"""Shadow runs on the dev server: a twin never executes a write tool and records its
comparison; `opsready shadow report` reads the comparisons back through visibility."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.flags import FlagClient
from activities.models.local import LocalProvider
from opsready.settings import PROJECT_ROOT, Settings
from tests.conftest import WorkerFactory
from tests.workflows.test_flags import flag_rig, set_value, write_flags
from workers.app import build_activities, build_worker
from workflows.types import AgentRunRequest, AgentRunResult, RunStatus

pytestmark = pytest.mark.integration

SMALL_REFUND = "My mug from order A-1001 arrived broken, please refund it"
QUESTION = "Where is my order A-1003? It was due days ago and it is late."


async def test_shadow_report_summarises_agreement_of_shadow_twins(
    dev_env: WorkflowEnvironment, tmp_path: Path, run_worker: WorkerFactory
) -> None:
    agent_dir = tmp_path / "agents"
    agent_dir.mkdir()
    for name in ("support-triage.toml", "pricing.toml"):
        (agent_dir / name).write_text((PROJECT_ROOT / "agents" / name).read_text())
    (agent_dir / "data").symlink_to(PROJECT_ROOT / "agents" / "data")
    flags_file = tmp_path / "flags.json"
    write_flags(flags_file, set_value("shadow", {"prompt_version": "v2", "sample_rate": 1}))
    settings = Settings(
        agents_dir=agent_dir,
        data_dir=tmp_path / "data",
        task_queue=f"shadow-{uuid.uuid4().hex[:8]}",
        flags_file=flags_file,
        worker_versioning=False,
    )
    flags = FlagClient.from_settings(settings)
    client = dev_env.client
    activities = build_activities(settings, providers={"local": LocalProvider()}, flags=flags)
    try:
        async with build_worker(client, settings, activities=activities):
            results = await asyncio.gather(
                *(
                    client.execute_workflow(
                        "AgentRun",
                        AgentRunRequest(agent="support-triage", input=text, user_id="customer-17"),
                        id=f"shadow-{uuid.uuid4().hex[:8]}",
                        task_queue=settings.task_queue,
                        result_type=AgentRunResult,
                    )
                    for text in (SMALL_REFUND, QUESTION)
                )
            )
            for result in results:
                assert result.status is RunStatus.COMPLETED and result.shadow_run_id
                await client.get_workflow_handle(result.shadow_run_id).result()
    finally:
        flags.close()

    address = client.service_client.config.target_host
    command = [sys.executable, "-m", "starters.cli", "--address", address]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}

    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            *command,
            *args,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        return process.returncode or 0, out.decode(), err.decode()

    # Visibility may lag the close of the last shadow run by a moment.
    async with asyncio.timeout(20):
        while True:
            code, out, err = await cli("shadow", "report", "support-triage", "--json")
            assert code == 0, err
            report = json.loads(out)
            if report["compared"] >= 2:
                break
            await asyncio.sleep(0.2)
    assert report["candidates"] == ["prompt v2"]
    assert report["same_tool_plan_rate"] == 1.0 and report["same_status_rate"] == 1.0
    assert report["differences"] == []
    code, out, _ = await cli("shadow", "report", "support-triage")
    assert code == 0 and "same tool plan   100%" in out
    # An agent nobody defined is a typo, not "no shadow comparisons yet" (issue 11).
    code, out, err = await cli("shadow", "report", "nobody")
    assert code == 2 and err.startswith("opsready: error: unknown agent 'nobody'"), err


async def test_shadow_run_simulates_write_tools_and_records_its_comparison(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(dev_env, tmp_path) as rig:
        write_flags(
            rig.settings.flags_file, set_value("shadow", {"prompt_version": "v2", "sample_rate": 1})
        )
        await rig.until_flag("shadow", {"prompt_version": "v2", "sample_rate": 1})
        run_id, result = await rig.run("support-triage", SMALL_REFUND)
        assert result.status is RunStatus.COMPLETED
        assert result.shadow_run_id == f"{run_id}-shadow"
        shadow = await rig.client.get_workflow_handle(
            result.shadow_run_id, result_type=AgentRunResult
        ).result()
        refunds = await rig.ledger.refunds()

    # Production made its refund; the shadow proposed the same one and made none.
    assert [r["idempotency_key"].split(":")[0] for r in refunds] == [run_id]
    assert shadow.config is not None and shadow.config.is_shadow
    assert shadow.config.variant == "shadow" and shadow.config.prompt_version == "v2"
    refund = next(c for c in shadow.tool_calls if c.tool == "refund_order")
    assert refund.decision == "simulated" and refund.output["simulated"] is True
    comparison = shadow.shadow_comparison
    assert comparison is not None
    assert comparison.production.run_id == run_id
    assert comparison.same_tool_plan and comparison.same_status
    assert comparison.production.tool_plan == ["search_kb", "lookup_order", "refund_order"]
    assert 0.0 <= comparison.output_similarity <= 1.0
