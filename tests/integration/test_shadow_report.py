"""`opsready shadow report` on the dev server: shadow twins of production runs, read back
through visibility, summarised as agreement and differences."""

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
from tests.workflows.test_flags import set_value, write_flags
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
                        AgentRunRequest(agent="support-triage", input=text, user_id="c-1"),
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
    code, out, err = await cli("shadow", "report", "nobody")
    assert code == 0 and "no shadow comparisons for nobody" in out
