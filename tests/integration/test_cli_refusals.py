"""The CLI refuses what it cannot honour and shows where a run stands, against the dev
server: decisions and halts for a run whose worker is gone, request ids, unknown agents,
a tool call awaiting approval, `run --wait` on an approval, a model call being retried."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, suppress

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.models.local import LocalProvider
from opsready.client import OpsreadyClient
from opsready.errors import RunEndedError
from opsready.settings import PROJECT_ROOT, Settings
from tests.conftest import WorkerFactory
from tests.integration import test_cli
from tests.integration.test_cli import (
    BIG_REFUND,
    QUESTION,
    Cli,
    _exec,
    eventually,
    one_line_error,
)
from workers.app import build_activities, build_worker
from workers.versioning import ensure_current_version
from workflows.payloads import ModelCallInput, ModelCallResult
from workflows.types import RunStatus

pytestmark = pytest.mark.integration
cli = test_cli.cli  # the fixture: a worker on the dev server and the CLI as a subprocess

BUILD = "0.9.0-old"


class VersionedFleet:
    """Workers of one build on a deployment of its own, started and stopped at will."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings) -> None:
        self.env, self.settings = env, settings

    def worker(self) -> AbstractAsyncContextManager[Worker]:
        activities = build_activities(self.settings, providers={"local": LocalProvider()})
        return build_worker(self.env.client, self.settings, activities=activities)


@pytest.fixture
async def fleet(dev_env: WorkflowEnvironment, settings: Settings) -> AsyncIterator[VersionedFleet]:
    suffix = uuid.uuid4().hex[:8]
    versioned = settings.model_copy(
        update={
            "worker_versioning": True,
            "deployment_name": f"opsready-old-{suffix}",
            "build_id": BUILD,
        }
    )
    yield VersionedFleet(dev_env, versioned)


async def test_decisions_and_halts_for_a_run_whose_worker_stopped_say_so_and_name_the_fix(
    fleet: VersionedFleet,
) -> None:
    address = fleet.env.client.service_client.config.target_host
    client = OpsreadyClient(fleet.env.client, fleet.settings)
    cli = Cli(address, fleet.settings, client)
    async with fleet.worker():
        assert await ensure_current_version(fleet.env.client, fleet.settings) is not None
        decided, halted = await cli.start(), await cli.start()
        for run_id in (decided, halted):
            await client.wait_for_approval(run_id, timeout=30)
    # The worker is gone; the runs stay pinned to its build.
    fix = f"OPSREADY_BUILD_ID={BUILD} OPSREADY_DEPLOYMENT_NAME={fleet.settings.deployment_name}"
    approve, halt = await asyncio.gather(  # two runs: each command waits its 2 s at once
        cli("approve", decided, "--as", "alice", "--wait-seconds", "2"),
        cli("halt", halted, "--reason", "stop", "--wait-seconds", "2"),
    )
    one_line_error(approve, fix)
    assert approve.code == 5
    # Not delivered: refused before sending, or not taken before the deadline.
    assert "the decision was not sent" in approve.err or "not in the run's history" in approve.err

    one_line_error(halt, "the halt is recorded in")
    assert halt.code == 5 and fix in halt.err

    async with fleet.worker():  # a worker of that build: the recorded halt acts
        result = await client.result(halted)
        assert result.status is RunStatus.HALTED
        with suppress(RunEndedError):  # the undelivered decision may have landed since
            await client.halt(decided, reason="test cleanup", by="pytest")


async def test_a_decision_for_a_run_no_worker_ever_polled_is_not_sent(cli: Cli) -> None:
    lonely = cli.settings.model_copy(update={"task_queue": f"nobody-{uuid.uuid4().hex[:8]}"})
    client = OpsreadyClient(cli.client.temporal, lonely)
    run_id = await client.start_run("support-triage", QUESTION)
    orphan = Cli(cli.address, lonely, client)
    try:
        approve = await orphan("approve", run_id, "--as", "alice")
        one_line_error(approve, "the decision was not sent; start one with `OPSREADY_TASK_QUEUE=")
        assert approve.code == 5
        halt = await orphan("halt", run_id, "--reason", "stop", "--json")
        one_line_error(halt, "the halt is recorded")
    finally:
        await client.temporal.get_workflow_handle(run_id).terminate("test cleanup")


async def test_request_ids_outside_the_allowed_characters_are_refused(cli: Cli) -> None:
    bad_ids = ("has space", "a/b", "it's", '"q"')
    runs = (cli("run", "support-triage", QUESTION, "--request-id", bad) for bad in bad_ids)
    for done in await asyncio.gather(*runs):
        one_line_error(done, "invalid request id")
        assert done.code == 2


async def test_a_reused_request_id_with_another_text_is_refused(cli: Cli) -> None:
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    first = await cli("run", "support-triage", QUESTION, "--request-id", request_id)
    assert first.code == 0, first.err
    again = await cli("run", "support-triage", QUESTION, "--request-id", request_id)
    assert again.out == first.out  # same text: the same run, as before
    other = await cli("run", "support-triage", BIG_REFUND, "--request-id", request_id)
    one_line_error(other, f"request id '{request_id}' already started support-triage-{request_id}")


async def test_an_unknown_agent_is_named_not_reported_as_no_runs(cli: Cli) -> None:
    for command in (["list", "--agent", "suport-triage"], ["shadow", "report", "suport-triage"]):
        done = await cli(*command)
        one_line_error(done, "unknown agent 'suport-triage'; did you mean support-triage?")
    empty = await cli("list", "--agent", "support-triage", "--status", "budget_exceeded")
    assert empty.code == 0


async def test_status_shows_the_waiting_tool_call_its_arguments_and_how_to_answer(
    cli: Cli,
) -> None:
    text = "My headphones from order A-1002 arrived broken (écouteurs cassés), I want a refund."
    run_id = await cli.start(text)
    pending = await cli.client.wait_for_approval(run_id, timeout=30)
    done = await cli("status", run_id)
    assert done.code == 0, done.err
    refund = next(
        line
        for line in done.out.splitlines()
        if line.startswith("tool ") and " refund_order " in line
    )
    assert refund.endswith("awaiting approval") and "invalid" not in refund
    whole = json.dumps(pending.arguments, ensure_ascii=False, separators=(", ", ": "))
    assert "écouteurs cassés" in whole and whole in refund  # whole, non-ASCII as itself
    assert "\\u" not in done.out
    answer = f"opsready approve {run_id} --request-id {pending.request_id} --as NAME"
    assert answer in done.out
    await cli.client.halt(run_id, reason="test cleanup", by="pytest")


async def test_run_wait_says_what_it_waits_for_and_how_to_answer(cli: Cli) -> None:
    request_id = f"w-{uuid.uuid4().hex[:8]}"
    run_id = f"support-triage-{request_id}"
    command = [sys.executable, "-m", "starters.cli", "--address", cli.address, "run"]
    # As the order's customer: another user's order is "not found" (least privilege).
    command += ["support-triage", BIG_REFUND, "--user", "customer-17"]
    command += ["--request-id", request_id, "--wait"]
    env = {
        **os.environ,
        "OPSREADY_TASK_QUEUE": cli.settings.task_queue,
        "OPSREADY_DATA_DIR": str(cli.settings.data_dir),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=PROJECT_ROOT, stdout=PIPE, stderr=PIPE
    )
    try:
        assert process.stderr is not None
        told: list[str] = []
        async with asyncio.timeout(30):  # until the CLI has said how to answer
            while not any("approve:" in line for line in told):
                line = (await process.stderr.readline()).decode()
                assert line, f"the CLI ended without saying what it waits for: {told}"
                told.append(line)
        pending = await cli.client.wait_for_approval(run_id, timeout=30)
        answer = f"opsready approve {run_id} --request-id {pending.request_id} --as NAME"
        assert any(answer in line for line in told), told
        assert told[0].startswith("waiting   approval of refund_order {")
        await cli.client.approve(run_id, "alice", request_id=pending.request_id)
        out, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0
        assert "completed" in out.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


class FailingProvider:
    """A provider whose every call fails in a way Temporal retries."""

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        raise ConnectionError("provider answered 503: overloaded, try later")

    async def aclose(self) -> None:
        return None


async def test_status_shows_the_attempt_and_last_error_of_a_retried_model_call(
    dev_env: WorkflowEnvironment, settings: Settings, run_worker: WorkerFactory
) -> None:
    client = OpsreadyClient(dev_env.client, settings)
    async with run_worker(dev_env.client, settings, providers={"local": FailingProvider()}):
        run_id = await client.start_run("support-triage", QUESTION)

        async def retried() -> bool | None:
            calls = await client.pending_calls(run_id)
            return True if any(c.attempt >= 2 and c.last_error for c in calls) else None

        await eventually(retried)
        address = dev_env.client.service_client.config.target_host
        command = [sys.executable, "-m", "starters.cli", "--address", address, "status", run_id]
        env = {"OPSREADY_TASK_QUEUE": settings.task_queue, "PYTHONPATH": str(PROJECT_ROOT)}
        done = await _exec(command, {**os.environ, **env})
        assert done.code == 0, done.err
        line = next(line for line in done.out.splitlines() if line.startswith("retrying"))
        assert line.startswith("retrying  model call, attempt ")
        assert "last error: provider answered 503: overloaded, try later" in line
        await client.halt(run_id, reason="test cleanup", by="pytest")


async def test_wait_for_status_raises_when_the_run_ends_otherwise(cli: Cli) -> None:
    run_id = await cli.start(QUESTION)
    with pytest.raises(RunEndedError, match="ended completed"):
        await cli.client.wait_for_status(run_id, RunStatus.AWAITING_APPROVAL, timeout=30)
    # The state says completed before the run records its outcome and closes: wait for that.
    assert (await cli.client.result(run_id)).status is RunStatus.COMPLETED
    description = await cli.client.temporal.get_workflow_handle(run_id).describe()
    assert description.status is WorkflowExecutionStatus.COMPLETED
