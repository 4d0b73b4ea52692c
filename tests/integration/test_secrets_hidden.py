"""Secrets planted in a run's input, in a tool result and in the model's answer appear nowhere
a person looks without opening the history (issue 9): `temporal workflow describe` and
`list`, the memo, summary, details and current details, the search attributes (AgentUser a
pseudonym), `opsready status` and `opsready list` (text and --json), and nowhere in the logs,
spans and metric labels. Scanned while the run waits for approval and after it ends."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.testing import WorkflowEnvironment

from activities.tools.support import support_tools
from opsready.client import OpsreadyClient
from opsready.connection import connect
from opsready.logs import configure_logging
from opsready.redaction import pseudonymous_user
from opsready.settings import PROJECT_ROOT, Settings
from opsready.telemetry import Telemetry
from tests.conftest import TEMPORAL_BIN
from tests.integration.test_telemetry import (
    API_KEY,
    CARD,
    EMAIL,
    SECRETS,
    TEXT,
    LeakyModel,
    _points,
)
from workers.app import build_activities, build_worker
from workflows import contract
from workflows.types import RunStatus

pytestmark = pytest.mark.integration

HISTORY = ("closeEvent", "result")  # what `temporal workflow describe` reads from history


@dataclass
class Seen:
    """Everything a person could read about the run, by where it came from."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, value: Any) -> None:
        self.texts[where] = value if isinstance(value, str) else json.dumps(value, default=str)

    def leaks(self) -> list[tuple[str, str]]:
        return [(where, s) for where, text in self.texts.items() for s in SECRETS if s in text]


async def _exec(*command: str, env: dict[str, str] | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def until_waiting(client: OpsreadyClient, run_id: str) -> None:
    async with asyncio.timeout(30):
        while True:
            if (await client.state(run_id)).status is RunStatus.AWAITING_APPROVAL:
                return
            await asyncio.sleep(0.05)


async def look(seen: Seen, when: str, client: OpsreadyClient, run_id: str, address: str) -> None:
    handle = client.temporal.get_workflow_handle(run_id)
    description = await handle.describe()
    seen.add(f"{when} memo", await description.memo())
    seen.add(f"{when} summary", await description.static_summary())
    seen.add(f"{when} details", await description.static_details())
    seen.add(f"{when} search attributes", dict(description.search_attributes))
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    seen.add(f"{when} current details", metadata.current_details)
    cli = (TEMPORAL_BIN, "--address", address, "-o", "json")
    described = json.loads(await _exec(*cli[:1], "workflow", "describe", "-w", run_id, *cli[1:]))
    # Of an ended run the CLI also prints its close event and result, read from history:
    # the run's answer for its caller, unredacted by design (a payload codec hides it).
    seen.add(f"{when} temporal describe", {k: v for k, v in described.items() if k not in HISTORY})
    query = f"WorkflowId='{run_id}'"
    seen.add(
        f"{when} temporal list", await _exec(*cli[:1], "workflow", "list", "-q", query, *cli[1:])
    )
    env = {
        **os.environ,
        "OPSREADY_TASK_QUEUE": client.settings.task_queue,
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    opsready = (sys.executable, "-m", "starters.cli", "--address", address)
    for command in (
        ("status", run_id),
        ("status", run_id, "--json"),
        ("list",),
        ("list", "--json"),
    ):
        seen.add(f"{when} opsready {' '.join(command)}", await _exec(*opsready, *command, env=env))


async def test_planted_secrets_appear_nowhere_a_person_looks(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    data_dir = tmp_path / "agent-data"
    shutil.copytree(PROJECT_ROOT / "agents" / "data" / "support-triage", data_dir)
    orders = json.loads((data_dir / "orders.json").read_text())
    orders["A-1002"]["customer_id"] = EMAIL  # the run's user owns it (least privilege)
    orders["A-1002"]["customer_email"] = EMAIL  # a tool result carrying personal data
    orders["A-1002"]["payment_note"] = f"card {CARD}, api key {API_KEY}"
    (data_dir / "orders.json").write_text(json.dumps(orders))
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = Telemetry.create(
        span_processors=[SimpleSpanProcessor(spans)], metric_readers=[reader]
    )
    logs = io.StringIO()
    configure_logging(fmt="json", stream=logs, level="INFO")
    settings = Settings(data_dir=tmp_path / "data", task_queue="secrets", worker_versioning=False)
    address = dev_env.client.service_client.config.target_host
    client = OpsreadyClient(await connect(address, telemetry=telemetry), settings)
    activities = build_activities(
        settings,
        providers={"local": LeakyModel()},
        tools=support_tools(data_dir),
        telemetry=telemetry,
    )
    seen = Seen()
    try:
        async with build_worker(client.temporal, settings, activities=activities):
            run_id = await client.start_run("support-triage", TEXT, user_id=EMAIL, tenant_id="acme")
            await until_waiting(client, run_id)
            await look(seen, "waiting", client, run_id, address)
            await client.approve(run_id, "alice", comment=f"refund to {CARD}")
            result = await client.result(run_id)
            await look(seen, "ended", client, run_id, address)
    finally:
        configure_logging()

    # The run really carried the secrets: its tool result in clear, and the model's answer,
    # which the agent's leak guardrail masked before the user saw it.
    assert result.status is RunStatus.COMPLETED and "[EMAIL]" in (result.output or "")
    assert ("data_leak", "masked") in [(e.kind, e.action) for e in result.safety_events]
    assert API_KEY in json.dumps([call.output for call in result.tool_calls])
    seen.add("logs", logs.getvalue())
    seen.add("spans", [[s.name, dict(s.attributes or {})] for s in spans.get_finished_spans()])
    seen.add(
        "metric labels", [labels for points in _points(reader).values() for labels, _ in points]
    )
    assert seen.leaks() == [], seen.leaks()
    attributes = json.loads(seen.texts["ended search attributes"])
    assert attributes[contract.AGENT_USER.name] == [pseudonymous_user(EMAIL)]
    assert pseudonymous_user(EMAIL) in seen.texts["ended memo"]  # the start memo's user
