"""A worker killed with SIGKILL in the middle of a refund, and restarted, finishes the run
with the refund made exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.tools.ledger import Ledger
from opsready.runs import run_result
from opsready.settings import PROJECT_ROOT
from workflows.types import AgentRunRequest, AgentRunResult, RunStatus

pytestmark = pytest.mark.integration

SMALL_REFUND = "My mug from order A-1001 arrived broken, please refund it"


@asynccontextmanager
async def worker_process(
    address: str, task_queue: str, root: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability.crash_worker",
        "--address",
        address,
        "--task-queue",
        task_queue,
        "--data-dir",
        str(root / "data"),
        "--hang-file",
        str(root / "hang"),
        "--reached-file",
        str(root / "reached"),
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line.strip() == b"ready", line
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


async def test_worker_killed_mid_refund_finishes_with_one_refund(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    address = dev_env.client.service_client.config.target_host
    task_queue = f"crash-{uuid.uuid4().hex[:8]}"
    hang, reached = tmp_path / "hang", tmp_path / "reached"
    hang.touch()

    async with worker_process(address, task_queue, tmp_path) as first:
        handle = await dev_env.client.start_workflow(
            "AgentRun",
            AgentRunRequest(agent="support-triage", input=SMALL_REFUND, user_id="customer-17"),
            id=f"crash-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            result_type=AgentRunResult,
        )
        await until(reached.exists)  # the refund is made; the activity has not completed
        first.send_signal(signal.SIGKILL)
        await first.wait()
    hang.unlink()

    async with worker_process(address, task_queue, tmp_path):
        result = await asyncio.wait_for(run_result(handle), timeout=60)

    assert result.status is RunStatus.COMPLETED, result.reason
    refund_calls = [c for c in result.tool_calls if c.tool == "refund_order"]
    assert len(refund_calls) == 1 and refund_calls[0].ok
    key = refund_calls[0].idempotency_key
    # The tool body ran twice (before and after the kill) ...
    assert reached.read_text().split() == [key, key]
    # ... and the money moved once.
    refunds = await Ledger(tmp_path / "data" / "side_effects.sqlite").refunds()
    assert [(r["idempotency_key"], r["amount_usd"]) for r in refunds] == [(key, 18.0)]
