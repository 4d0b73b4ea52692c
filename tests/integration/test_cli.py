"""The `opsready` CLI end to end, as a subprocess against the dev server and a real worker:
start, query, approve (by the CLI and by `temporal workflow signal`), reject, halt, list by
`AgentStatus`, idempotent start, and one clear line for every user mistake."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.models.local import LocalProvider
from activities.tools.ledger import Ledger
from opsready.client import OpsreadyClient
from opsready.settings import PROJECT_ROOT, Settings
from tests.conftest import TEMPORAL_BIN, WorkerFactory
from workflows.types import RunStatus

pytestmark = pytest.mark.integration

BIG_REFUND = "My headphones from order A-1002 arrived broken, I want a refund."
QUESTION = "Where is my order A-1003? It was due days ago and it is late."
T = TypeVar("T")


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    address: str
    settings: Settings
    client: OpsreadyClient

    async def __call__(self, *args: str) -> Done:
        env = {
            **os.environ,
            "OPSREADY_TASK_QUEUE": self.settings.task_queue,
            "OPSREADY_DATA_DIR": str(self.settings.data_dir),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        command = [sys.executable, "-m", "starters.cli", "--address", self.address, *args]
        return await _exec(command, env)

    async def start(self, text: str = BIG_REFUND) -> str:
        done = await self("run", "support-triage", text, "--user", "customer-17", "--json")
        assert done.code == 0, done.err
        run_id: str = done.json()["run_id"]
        return run_id

    async def wait_for_status(self, run_id: str, status: RunStatus) -> None:
        async def current() -> RunStatus | None:
            state = await self.client.state(run_id)
            return state.status if state.status is status else None

        await eventually(current)


async def _exec(command: list[str], env: dict[str, str]) -> Done:
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 20.0) -> T:
    """Poll `probe` until it returns something other than None (visibility is eventual)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if value is not None:
                return value
            await asyncio.sleep(0.1)


@pytest.fixture
async def cli(
    dev_env: WorkflowEnvironment, settings: Settings, run_worker: WorkerFactory
) -> AsyncIterator[Cli]:
    address = dev_env.client.service_client.config.target_host
    async with run_worker(dev_env.client, settings, providers={"local": LocalProvider()}):
        yield Cli(address, settings, OpsreadyClient(dev_env.client, settings))


async def refunds(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    ledger = Ledger(settings.data_dir / "side_effects.sqlite")
    return [r for r in await ledger.refunds() if str(r["idempotency_key"]).startswith(run_id)]


def one_line_error(done: Done, fragment: str) -> None:
    assert done.code != 0
    assert "Traceback" not in done.err
    lines = done.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsready: error: "), done.err
    assert fragment in lines[0], lines[0]


async def test_run_waits_for_approval_then_cli_approve_completes_it(cli: Cli) -> None:
    run_id = await cli.start()
    await cli.wait_for_status(run_id, RunStatus.AWAITING_APPROVAL)

    status = await cli("status", run_id)
    assert status.code == 0
    assert "awaiting_approval" in status.out and "refund_order" in status.out

    approved = await cli("approve", run_id, "--as", "alice", "--comment", "damaged in transit")
    assert approved.code == 0, approved.err
    assert "approved by alice" in approved.out

    final = await eventually(lambda: _status_if_done(cli, run_id))
    assert final["status"] == "completed"
    assert [(a["outcome"], a["approver"], a["comment"]) for a in final["approvals"]] == [
        ("approved", "alice", "damaged in transit")
    ]
    assert [r["amount_usd"] for r in await refunds(cli.settings, run_id)] == [129.0]


async def _status_if_done(cli: Cli, run_id: str) -> dict[str, Any] | None:
    done = await cli("status", run_id, "--json")
    assert done.code == 0, done.err
    state: dict[str, Any] = done.json()
    return state if RunStatus(state["status"]).is_terminal else None


async def test_temporal_cli_signal_approves_the_pending_request(cli: Cli) -> None:
    run_id = await cli.start()
    await cli.wait_for_status(run_id, RunStatus.AWAITING_APPROVAL)
    decision = json.dumps({"approved": True, "approver": "bob", "comment": "from the UI"})
    command = [TEMPORAL_BIN, "workflow", "signal", "--address", cli.address]
    command += ["--workflow-id", run_id, "--name", "approval_decision", "--input", decision]
    signal = await _exec(command, dict(os.environ))
    assert signal.code == 0, signal.err
    result = await cli.client.result(run_id)
    assert result.status is RunStatus.COMPLETED
    assert [(a.outcome, a.approver) for a in result.approvals] == [("approved", "bob")]


async def test_list_by_agent_status_finds_the_waiting_run(cli: Cli) -> None:
    run_id = await cli.start()
    await cli.wait_for_status(run_id, RunStatus.AWAITING_APPROVAL)

    async def listed() -> list[str] | None:
        done = await cli("list", "--status", "awaiting_approval", "--json")
        assert done.code == 0, done.err
        ids = [r["run_id"] for r in done.json()]
        return ids if run_id in ids else None

    await eventually(listed)
    table = await cli("list", "--agent", "support-triage")
    assert run_id in table.out and "awaiting_approval" in table.out
    await cli.client.halt(run_id, reason="test cleanup", by="pytest")


async def test_reject_ends_the_run_without_the_refund(cli: Cli) -> None:
    run_id = await cli.start()
    await cli.wait_for_status(run_id, RunStatus.AWAITING_APPROVAL)
    rejected = await cli("reject", run_id, "--as", "bob", "--comment", "too much")
    assert rejected.code == 0, rejected.err
    result = await cli.client.result(run_id)
    assert result.status is RunStatus.REJECTED
    assert await refunds(cli.settings, run_id) == []


async def test_halt_stops_a_waiting_run(cli: Cli) -> None:
    run_id = await cli.start()
    await cli.wait_for_status(run_id, RunStatus.AWAITING_APPROVAL)
    halted = await cli("halt", run_id, "--reason", "incident 7", "--by", "oncall")
    assert halted.code == 0, halted.err
    result = await cli.client.result(run_id)
    assert (result.status, result.reason) == (RunStatus.HALTED, "halted by oncall: incident 7")


async def test_run_wait_prints_the_result_and_exits_zero_when_completed(cli: Cli) -> None:
    done = await cli("run", "support-triage", QUESTION, "--wait")
    assert done.code == 0, done.err
    assert "completed" in done.out and "search_kb" in done.out


async def test_same_request_id_starts_one_run(cli: Cli) -> None:
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    first = await cli("run", "support-triage", QUESTION, "--request-id", request_id, "--json")
    second = await cli("run", "support-triage", QUESTION, "--request-id", request_id, "--json")
    assert first.code == second.code == 0
    assert first.json()["run_id"] == second.json()["run_id"] == f"support-triage-{request_id}"
    await cli.client.result(first.json()["run_id"])
    third = await cli("run", "support-triage", QUESTION, "--request-id", request_id, "--json")
    assert third.json()["run_id"] == first.json()["run_id"]  # even after it ended


async def test_approver_without_the_right_is_refused_and_the_run_keeps_waiting(cli: Cli) -> None:
    run_id = await cli.start()
    await cli.wait_for_status(run_id, RunStatus.AWAITING_APPROVAL)
    one_line_error(await cli("approve", run_id, "--as", "mallory"), "mallory")
    one_line_error(await cli("approve", run_id, "--as", "alice", "--request-id", "nope"), "nope")
    assert (await cli.client.state(run_id)).status is RunStatus.AWAITING_APPROVAL
    await cli.client.halt(run_id, reason="test cleanup", by="pytest")


async def test_bad_input_gets_one_clear_line_and_a_non_zero_exit(cli: Cli) -> None:
    answered = await cli.start(QUESTION)
    unknown, blank, missing, undecidable, usage = await asyncio.gather(  # independent
        cli("run", "no-such-agent", "hello"),
        cli("run", "support-triage", "   "),
        cli("status", "support-triage-does-not-exist"),
        cli("approve", "support-triage-does-not-exist", "--as", "alice"),
        cli("list", "--status", "bogus"),
    )
    one_line_error(unknown, "unknown agent 'no-such-agent'")
    one_line_error(blank, "input")
    one_line_error(missing, "no run 'support-triage-does-not-exist'")
    assert missing.code == 3
    one_line_error(undecidable, "no run 'support-triage-does-not-exist'")
    assert undecidable.code == 3
    assert usage.code == 2 and "invalid choice" in usage.err and "Traceback" not in usage.err

    await cli.client.result(answered)
    approve, halt = await asyncio.gather(
        cli("approve", answered, "--as", "alice"), cli("halt", answered, "--reason", "late")
    )
    one_line_error(approve, "already ended")
    one_line_error(halt, "already ended")


async def test_unreachable_temporal_is_one_line_with_exit_code_4(cli: Cli) -> None:
    command = [sys.executable, "-m", "starters.cli", "--address", "127.0.0.1:1", "list"]
    done = await _exec(command, {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    one_line_error(done, "cannot reach Temporal at 127.0.0.1:1")
    assert done.code == 4


def command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every command and subcommand, as the words that name it (`("flags", "kill")`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from command_paths(sub, (*prefix, name))


def test_every_command_has_help() -> None:
    from starters.cli import build_parser

    paths = list(command_paths(build_parser()))
    assert ("flags", "kill") in paths and ("status",) in paths
    for path in paths:
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args([*path, "--help"])
        assert exited.value.code == 0, path
