"""Bad input sent the way an operator or a script would, with the real `temporal` CLI to the
dev server: malformed signals become `invalid_signal` safety events (a malformed halt still
halts, a malformed approval leaves the approval pending), a bad start request ends the run
`failed` / `invalid_request` in its first workflow task, and the CLI's cancel is a halt."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.models.local import LocalProvider
from opsready.client import OpsreadyClient
from opsready.settings import Settings
from tests.conftest import TEMPORAL_BIN
from workers.app import build_activities, build_worker
from workflows.contract import AGENT_RUN_WORKFLOW
from workflows.types import AgentRunState, RunStatus, StopReason

pytestmark = pytest.mark.integration

BIG_REFUND = "My headphones from order A-1002 arrived broken, I want a refund."
MALFORMED_APPROVALS = ['"a string"', "{}", "null", '{"approved": "yes", "approver": 5}']
MALFORMED_HALTS = ['"stop"', '{"reason": 5, "by": []}']


@dataclass
class Rig:
    env: WorkflowEnvironment
    settings: Settings
    client: OpsreadyClient

    @property
    def address(self) -> str:
        return self.env.client.service_client.config.target_host

    async def temporal(self, *args: str) -> str:
        """Run the `temporal` CLI against the dev server; its output (it must succeed)."""
        process = await asyncio.create_subprocess_exec(
            TEMPORAL_BIN,
            *args,
            "--address",
            self.address,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    async def waiting_run(self) -> str:
        run_id = await self.client.start_run("support-triage", BIG_REFUND, user_id="customer-17")
        await self.until(run_id, lambda s: s.status is RunStatus.AWAITING_APPROVAL)
        return run_id

    async def until(self, run_id: str, holds: Callable[[AgentRunState], bool]) -> AgentRunState:
        async with asyncio.timeout(20):
            while True:
                state = await self.client.state(run_id)
                if holds(state):
                    return state
                await asyncio.sleep(0.05)

    async def temporal_status(self, run_id: str) -> WorkflowExecutionStatus | None:
        return (await self.env.client.get_workflow_handle(run_id).describe()).status


@pytest.fixture(scope="module")
async def rig(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Rig]:
    root: Path = tmp_path_factory.mktemp("malformed")
    settings = Settings(
        data_dir=root / "data", task_queue=f"bad-{uuid.uuid4().hex[:8]}", worker_versioning=False
    )
    activities = build_activities(settings, providers={"local": LocalProvider()})
    async with build_worker(dev_env.client, settings, activities=activities):
        yield Rig(dev_env, settings, OpsreadyClient(dev_env.client, settings))


def invalid_signals(state: AgentRunState) -> list[str]:
    return [e.detail for e in state.safety_events if e.kind == "invalid_signal"]


async def test_malformed_approvals_are_safety_events_and_the_approval_stays_pending(
    rig: Rig,
) -> None:
    run_id = await rig.waiting_run()
    for count, payload in enumerate(MALFORMED_APPROVALS, start=1):
        await rig.temporal(
            "workflow", "signal", "-w", run_id, "--name", "approval_decision", "--input", payload
        )
        state = await rig.until(run_id, lambda s, n=count: len(invalid_signals(s)) == n)  # type: ignore[misc]
        assert state.status is RunStatus.AWAITING_APPROVAL and state.pending_approvals
        assert state.approvals == []
    details = invalid_signals(state)
    assert (
        details[0] == "approval_decision: expected a JSON object (ApprovalDecision), got a string"
    )
    assert details[2].endswith("got null")
    # "yes" is no decision: an approval must be the boolean true.
    assert details[3].startswith("approval_decision: approved: Input should be a valid boolean")
    # Still answerable: a good decision afterwards goes through.
    await rig.client.approve(run_id, "alice")
    assert (await rig.client.result(run_id)).status is RunStatus.COMPLETED


@pytest.mark.parametrize("payload", MALFORMED_HALTS)
async def test_a_malformed_halt_still_halts_and_says_the_reason_was_missing(
    rig: Rig, payload: str
) -> None:
    run_id = await rig.waiting_run()
    await rig.temporal("workflow", "signal", "-w", run_id, "--name", "halt", "--input", payload)
    result = await rig.client.result(run_id)
    assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.HALT)
    assert "halt with no valid reason" in (result.reason or ""), result.reason
    assert [e.kind for e in result.safety_events if e.kind == "invalid_signal"] == [
        "invalid_signal"
    ]
    assert [a.outcome for a in result.approvals] == ["halted"]
    assert await rig.temporal_status(run_id) is WorkflowExecutionStatus.CANCELED


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps({"agent": "support-triage", "input": "x" * 30_000}),  # 30 KB: over the limit
        '"refund my order"',  # not an object
    ],
    ids=["30KB-input", "non-object"],
)
async def test_a_bad_start_request_fails_the_run_in_its_first_workflow_task(
    rig: Rig, tmp_path: Path, payload: str
) -> None:
    run_id = f"bad-start-{uuid.uuid4().hex[:8]}"
    request = tmp_path / "request.json"
    request.write_text(payload)
    await rig.temporal(
        "workflow", "start", "--type", AGENT_RUN_WORKFLOW, "--task-queue", rig.settings.task_queue,
        "-w", run_id, "--input-file", str(request),
    )  # fmt: skip
    result = await rig.client.result(run_id)
    assert (result.status, result.stop_reason) == (RunStatus.FAILED, StopReason.INVALID_REQUEST)
    assert (result.reason or "").startswith("invalid request: ")
    assert "\n" not in (result.reason or "") and len(result.reason or "") < 400
    assert await rig.temporal_status(run_id) is WorkflowExecutionStatus.FAILED
    history = await rig.env.client.get_workflow_handle(run_id).fetch_history()
    tasks = [e for e in history.events if e.HasField("workflow_task_completed_event_attributes")]
    failed = [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
    assert (len(tasks), failed) == (1, [])


async def test_the_cli_cancel_is_a_halt_and_the_run_closes_canceled(rig: Rig) -> None:
    run_id = await rig.waiting_run()
    await rig.temporal("workflow", "cancel", "-w", run_id)
    result = await rig.client.result(run_id)  # read back from history, no details kept
    assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.HALT)
    assert (result.reason or "").startswith("halted by temporal-cancellation")
    assert [a.outcome for a in result.approvals] == ["halted"]
    assert await rig.temporal_status(run_id) is WorkflowExecutionStatus.CANCELED
    assert (await rig.client.state(run_id)).status is RunStatus.HALTED
