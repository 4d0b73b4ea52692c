"""Incidents on the dev server (visibility queries, halt signals, the CLI as a subprocess):
a SEV1 safety alert through the `opsready.incident.open` activity engages the agent's kill
switch at once and its open runs end `halted`; `opsready incident ...` end to end, with one
clear line for every mistake and a bundle that fails verification once a byte changes."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.incidents import IncidentActivities
from activities.models.local import LocalProvider
from opsready.client import OpsreadyClient
from opsready.incidents.service import Incidents
from opsready.settings import PROJECT_ROOT, Settings
from opsready.telemetry import Telemetry
from tests.conftest import write_agent
from tests.integration.test_cli import Done, _exec, one_line_error
from workers.app import build_activities, build_worker
from workflows.incident_types import IncidentTrigger, OpenIncidentRequest
from workflows.types import AgentRunResult, RunStatus, StopReason

pytestmark = pytest.mark.integration

BIG_REFUND = "My headphones from order A-1002 arrived broken, I want a refund."
T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 30.0) -> T:
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if value is not None:
                return value
            await asyncio.sleep(0.1)


@dataclass
class Stack:
    env: WorkflowEnvironment
    settings: Settings
    runs: OpsreadyClient
    incidents: Incidents
    agent: str

    async def cli(self, *args: str) -> Done:
        env = {
            **os.environ,
            "OPSREADY_TASK_QUEUE": self.settings.task_queue,
            "OPSREADY_DATA_DIR": str(self.settings.data_dir),
            "OPSREADY_AGENTS_DIR": str(self.settings.agents_dir),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        address = self.env.client.service_client.config.target_host
        return await _exec([sys.executable, "-m", "starters.cli", "--address", address, *args], env)

    async def until_waiting(self, run_id: str) -> None:
        async def waiting() -> bool | None:
            state = await self.runs.state(run_id)
            return True if state.status is RunStatus.AWAITING_APPROVAL else None

        await eventually(waiting)


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    # An agent of its own: halting "every open run of the agent" must not reach other tests.
    agent = f"triage-{uuid.uuid4().hex[:6]}"
    toml = (PROJECT_ROOT / "agents" / "support-triage.toml").read_text()
    write_agent(tmp_path / "agents", agent, toml.replace('"support-triage"', f'"{agent}"', 1))
    shutil.copytree(PROJECT_ROOT / "agents" / "incidents", tmp_path / "agents" / "incidents")
    flags_file = tmp_path / "flags.json"
    shutil.copyfile(PROJECT_ROOT / "temporal-dev" / "flags.json", flags_file)
    settings = Settings(
        agents_dir=tmp_path / "agents",
        data_dir=tmp_path / "data",
        flags_file=flags_file,
        task_queue=f"inc-{uuid.uuid4().hex[:8]}",
        worker_versioning=False,
    )
    tools_dir = PROJECT_ROOT / "agents" / "data" / "support-triage"
    (tmp_path / "agents" / "data").mkdir(exist_ok=True)
    shutil.copytree(tools_dir, tmp_path / "agents" / "data" / "support-triage")
    activities = build_activities(settings, providers={"local": LocalProvider()})
    async with build_worker(dev_env.client, settings, activities=activities):
        yield Stack(
            dev_env,
            settings,
            OpsreadyClient(dev_env.client, settings),
            Incidents(dev_env.client, settings.task_queue),
            agent,
        )


def safety_alert(agent: str, runs: list[str]) -> OpenIncidentRequest:
    return OpenIncidentRequest(
        dedup_key=f"{agent}-safety",
        title=f"{agent} refunds without asking",
        agent=agent,
        trigger=IncidentTrigger(
            kind="safety_rate",
            agent=agent,
            detail="safety events per run above 5%",
            numbers={"safety_events_per_run": 0.12, "threshold": 0.05},
            detected_at=datetime.now(UTC),
        ),
        user_impact="some",
        is_safety=True,
        affected_run_ids=runs,
    )


async def test_a_sev1_safety_alert_engages_the_kill_switch_and_open_runs_end_halted(
    stack: Stack,
) -> None:
    # As the orders' customer: another user's order is "not found" (least privilege).
    waiting = [
        await stack.runs.start_run(stack.agent, BIG_REFUND, user_id="customer-17") for _ in range(2)
    ]
    for run_id in waiting:
        await stack.until_waiting(run_id)

    # As the SLO monitor does: the activity, with the worker's own client.
    opener = IncidentActivities(stack.settings, Telemetry.create(span_processors=[]))
    activity_env = ActivityEnvironment(client=stack.env.client)
    opened = await activity_env.run(opener.open_incident, safety_alert(stack.agent, waiting))
    assert opened.is_new and opened.severity == "SEV1"

    results: list[AgentRunResult] = [await stack.runs.result(run_id) for run_id in waiting]
    for result in results:
        assert result.status is RunStatus.HALTED, result.reason
        assert result.stop_reason in (StopReason.HALT, StopReason.KILL_SWITCH)
        assert [a.outcome for a in result.approvals] == ["halted"]  # no refund made
    state = await stack.incidents.status(opened.incident_id)
    first = state.steps_run[0]
    assert (first.step, first.is_automatic, first.is_ok) == ("fail-closed/kill-switch", True, True)
    assert "2 open runs halted" in first.detail
    assert state.state == "mitigated"

    refused = await stack.runs.result(await stack.runs.start_run(stack.agent, BIG_REFUND))
    assert refused.status is RunStatus.HALTED
    assert refused.stop_reason is StopReason.KILL_SWITCH

    again = await activity_env.run(opener.open_incident, safety_alert(stack.agent, waiting))
    assert again.incident_id == opened.incident_id and not again.is_new and again.joins == 1

    async def listed() -> list[Any] | None:
        found = await stack.incidents.list_incidents(state="mitigated", agent=stack.agent)
        return found or None

    (summary,) = await eventually(listed)
    assert (summary.incident_id, summary.severity) == (opened.incident_id, "SEV1")


async def test_the_incident_cli_answers_an_incident_and_refuses_mistakes_in_one_line(
    stack: Stack,
) -> None:
    key = f"cli-{uuid.uuid4().hex[:6]}"
    opened = await stack.cli(
        "incident", "open", "--agent", "support-triage", "--title", "refunds look wrong",
        "--severity", "SEV3", "--by", "erin", "--dedup-key", key,
    )  # fmt: skip
    assert opened.code == 0, opened.err
    incident = f"incident-{key}"
    assert f"{incident}: opened, SEV3 open" in opened.out

    shown = await stack.cli("incident", "show", key)  # the dedup key alone works too
    assert shown.code == 0, shown.err
    assert "SEV3, open" in shown.out and "support-triage/pause-agent" in shown.out

    assert (await stack.cli("incident", "ack", incident, "--by", "alice")).code == 0
    acked_again, unknown, risky = await asyncio.gather(  # three refusals, none changes a thing
        stack.cli("incident", "ack", incident, "--by", "bob"),
        stack.cli("incident", "run", incident, "nope/x", "--by", "alice"),
        stack.cli("incident", "run", incident, "support-triage/pause-agent", "--by", "al"),
    )
    one_line_error(acked_again, "already acknowledged by alice")
    one_line_error(unknown, "unknown step")
    one_line_error(risky, "is risky: it needs approved_by")
    resolved = await stack.cli(
        "incident", "resolve", incident, "--by", "alice", "--summary", "prompt rolled back"
    )
    assert resolved.code == 0, resolved.err
    assert "MTTR" in resolved.out and "postmortem" in resolved.out

    verified = await stack.cli("incident", "evidence", "verify", incident)
    assert verified.code == 0, verified.err
    assert verified.out.count("ok  ") == 2  # the open and the resolve bundle
    status = await stack.incidents.status(incident)
    assert status.evidence_resolve is not None
    bundle = Path(status.evidence_resolve.path)
    assert (await stack.cli("incident", "evidence", "verify", str(bundle))).code == 0

    data = bytearray(await asyncio.to_thread(bundle.read_bytes))
    data[-40] ^= 0x01
    await asyncio.to_thread(bundle.write_bytes, bytes(data))
    changed, late, missing = await asyncio.gather(
        stack.cli("incident", "evidence", "verify", incident),
        stack.cli("incident", "note", incident, "--text", "late"),
        stack.cli("incident", "show", "no-such-incident"),
    )
    one_line_error(changed, "the bundle was changed")
    one_line_error(late, "has already ended")
    one_line_error(missing, "no incident 'no-such-incident'")
    assert missing.code == 3
