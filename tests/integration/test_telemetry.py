"""One demo run (a refund approved by a human) observed end to end on the dev server, with
in-memory span and metric exporters and a log capture: one connected trace with the GenAI
attributes, metrics equal to the run's result, correlation fields on every log line, no
duplicate workflow lines across replays, and no planted secret anywhere in the telemetry."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.testing import WorkflowEnvironment

from activities.models.local import LocalProvider
from activities.tools.support import support_tools
from opsready.agents import load_agent
from opsready.client import OpsreadyClient
from opsready.connection import connect
from opsready.logs import configure_logging
from opsready.settings import PROJECT_ROOT, Settings
from opsready.telemetry import Telemetry
from workers.app import build_activities, build_worker
from workflows.payloads import ModelCallInput, ModelCallResult
from workflows.types import AgentRunResult, RunStatus

pytestmark = pytest.mark.integration

EMAIL, PHONE, CARD = "jane.doe@example.com", "+1 415 555 0100", "4111 1111 1111 1111"
API_KEY, PASSWORD = "sk-live-abcdefghijklmnop1234", "hunter2-secret"
SECRETS = [EMAIL, PHONE, CARD, "4111111111111111", API_KEY, PASSWORD]
TEXT = (
    f"My headphones from order A-1002 arrived broken, I want a refund. I am {EMAIL}, "
    f"call {PHONE}; pay back to card {CARD}. My password is {PASSWORD}"
)


class LeakyModel(LocalProvider):
    """The demo model, but its final answer repeats personal data (as models do)."""

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        result = await super().complete(request)
        if result.message.content:
            leaked = result.message.content + f" We will write to {EMAIL} and use {API_KEY}."
            result.message.content = leaked
        return result


@dataclass
class Observed:
    result: AgentRunResult
    run_id: str
    spans: list[ReadableSpan]
    metrics: dict[str, list[tuple[dict[str, Any], Any]]]
    lines: list[dict[str, Any]]
    raw_logs: str


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "sum", None)
                    if value is None:
                        value = point.value  # type: ignore[union-attr]
                    found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return found


@pytest.fixture(scope="module")
async def observed(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Observed]:
    root = tmp_path_factory.mktemp("telemetry")
    data_dir = root / "agent-data"
    shutil.copytree(PROJECT_ROOT / "agents" / "data" / "support-triage", data_dir)
    orders = json.loads((data_dir / "orders.json").read_text())
    orders["A-1002"]["customer_email"] = EMAIL  # a tool result carrying personal data
    orders["A-1002"]["payment_note"] = f"card {CARD}, api key {API_KEY}"
    (data_dir / "orders.json").write_text(json.dumps(orders))

    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = Telemetry.create(
        span_processors=[SimpleSpanProcessor(spans)],
        metric_readers=[reader],
        env={"OPSREADY_LOG_CONTENT": "true"},  # content logged, and redacted even then
    )
    logs = io.StringIO()
    configure_logging(fmt="json", stream=logs, level="INFO")
    # No workflow cache: every workflow task replays the history from the start, so a
    # workflow log line that is not replay-safe would appear again and again.
    settings = Settings(
        data_dir=root / "data", task_queue="telemetry", worker_versioning=False
    ).model_copy(update={"max_cached_workflows": 0})
    address = dev_env.client.service_client.config.target_host
    temporal = await connect(address, telemetry=telemetry)
    activities = build_activities(
        settings,
        providers={"local": LeakyModel()},
        tools=support_tools(data_dir),
        telemetry=telemetry,
    )
    client = OpsreadyClient(temporal, settings)
    async with build_worker(temporal, settings, activities=activities):
        run_id = await client.start_run(
            "support-triage", TEXT, user_id="customer-17", tenant_id="acme", request_id="obs-1"
        )
        async with asyncio.timeout(30):
            while True:
                if (await client.state(run_id)).status is RunStatus.AWAITING_APPROVAL:
                    break
                await asyncio.sleep(0.05)
        await client.approve(run_id, "alice", comment="ok")
        result = await client.result(run_id)
    raw = logs.getvalue()
    configure_logging()
    yield Observed(
        result=result,
        run_id=run_id,
        spans=list(spans.get_finished_spans()),
        metrics=_points(reader),
        lines=[json.loads(line) for line in raw.splitlines() if line.startswith("{")],
        raw_logs=raw,
    )


def test_one_trace_from_the_starter_to_every_model_and_tool_span(observed: Observed) -> None:
    assert observed.result.status is RunStatus.COMPLETED
    names = [span.name for span in observed.spans]
    assert "StartWorkflow:AgentRun" in names
    model = [s for s in observed.spans if s.name.startswith("chat ")]
    tools = [s for s in observed.spans if s.name.startswith("execute_tool ")]
    assert len(model) == observed.result.steps
    assert len(tools) == len(observed.result.tool_calls)
    start = next(s for s in observed.spans if s.name == "StartWorkflow:AgentRun")
    run_spans = [s for s in observed.spans if s.name.startswith(("chat ", "execute_tool "))]
    run_spans += [s for s in observed.spans if s.name.startswith(("RunWorkflow", "RunActivity"))]
    assert len(run_spans) > len(model) + len(tools)
    assert {span.context.trace_id for span in run_spans} == {start.context.trace_id}
    # Model and tool spans are children of their activity's span.
    by_id = {span.context.span_id: span for span in observed.spans}
    for span in model + tools:
        assert span.parent is not None
        assert by_id[span.parent.span_id].name.startswith("RunActivity:")


def test_model_and_tool_spans_carry_genai_and_opsready_attributes(observed: Observed) -> None:
    model = [s for s in observed.spans if s.name.startswith("chat ")]
    for span in model:
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "local"
        assert attributes["gen_ai.request.model"] == "support-triage"
        assert attributes["opsready.agent"] == "support-triage"
        assert attributes["opsready.variant"] == "control"
        assert {"opsready.step", "opsready.cost_usd", "gen_ai.usage.input_tokens"} <= set(
            attributes
        )
        # Which definition and prompt produced the call (build id: none, unversioned worker).
        config = observed.result.config
        assert config is not None
        assert attributes["opsready.agent_version"] == config.agent_version
        assert attributes["opsready.config_hash"] == config.config_hash
        assert attributes["opsready.prompt_version"] == config.prompt_version
    usage = observed.result.usage
    assert sum(int(s.attributes["gen_ai.usage.input_tokens"]) for s in model) == (  # type: ignore[index, arg-type]
        usage.input_tokens
    )
    assert sum(int(s.attributes["gen_ai.usage.output_tokens"]) for s in model) == (  # type: ignore[index, arg-type]
        usage.output_tokens
    )
    refund = next(s for s in observed.spans if s.name == "execute_tool refund_order")
    assert refund.attributes is not None
    assert refund.attributes["opsready.risk_tier"] == "write"
    assert refund.attributes["opsready.decision"] == "approved"
    assert refund.attributes["gen_ai.operation.name"] == "execute_tool"


def _total(observed: Observed, name: str, **labels: str) -> float:
    return sum(
        value
        for attributes, value in observed.metrics.get(name, [])
        if all(attributes.get(key) == wanted for key, wanted in labels.items())
    )


def test_metrics_equal_the_run_result(observed: Observed) -> None:
    usage = observed.result.usage
    assert _total(observed, "gen_ai.client.token.usage", **{"gen_ai.token.type": "input"}) == (
        usage.input_tokens
    )
    assert _total(observed, "gen_ai.client.token.usage", **{"gen_ai.token.type": "output"}) == (
        usage.output_tokens
    )
    assert _total(observed, "opsready.run.cost") == pytest.approx(usage.cost_usd)
    assert _total(observed, "opsready.run.successful_cost") == pytest.approx(usage.cost_usd)
    assert _total(observed, "opsready.runs", status="completed") == 1
    assert _total(observed, "opsready.run.steps") == observed.result.steps
    assert _total(observed, "opsready.tool.calls") == len(observed.result.tool_calls)
    assert _total(observed, "opsready.tool.calls", **{"gen_ai.tool.name": "refund_order"}) == 1
    assert _total(observed, "opsready.approvals", event="requested") == 1
    assert _total(observed, "opsready.approvals", event="approved") == 1
    assert "opsready.approval.wait" in observed.metrics
    assert "gen_ai.client.operation.duration" in observed.metrics
    for attributes, _ in observed.metrics["opsready.runs"]:
        assert attributes["opsready.agent"] == "support-triage"
        assert attributes["opsready.variant"] == "control"


def test_every_run_log_line_carries_the_correlation_fields(observed: Observed) -> None:
    run_lines = [line for line in observed.lines if line.get("run_id") == observed.run_id]
    assert len(run_lines) >= 8
    trace_ids = set()
    for line in run_lines:
        for field in ("temporal_run_id", "agent", "user_id", "tenant_id", "trace_id", "span_id"):
            assert line.get(field), f"{field} missing from {line}"
        if line["logger"].startswith("opsready."):
            assert line.get("activity_type") and line.get("attempt") and "step" in line, line
        trace_ids.add(line["trace_id"])
    start = next(s for s in observed.spans if s.name == "StartWorkflow:AgentRun")
    assert trace_ids == {format(start.context.trace_id, "032x")}
    events = [line["event"] for line in run_lines]
    assert {"model call", "tool call", "approval requested", "approval approved"} <= set(events)
    activity_lines = [line for line in run_lines if line.get("activity_type")]
    version = load_agent(PROJECT_ROOT / "agents", "support-triage")[0].version
    assert all(line.get("agent_version") == version for line in activity_lines)
    model = next(line for line in run_lines if line["event"] == "model call")
    assert {"provider", "model", "prompt_version", "input_tokens", "output_tokens"} <= set(model)
    assert {"cost_usd", "latency_ms", "finish_reason"} <= set(model)


def test_workflow_log_lines_are_not_repeated_by_replays(observed: Observed) -> None:
    workflow_lines = [
        line["event"]
        for line in observed.lines
        if line.get("run_id") == observed.run_id and line["logger"] == "temporalio.workflow"
    ]
    assert workflow_lines.count("approval requested") == 1
    assert workflow_lines.count("approval approved") == 1
    assert len([e for e in workflow_lines if e.startswith("run ended")]) == 1


def test_planted_secrets_appear_in_no_log_span_or_metric(observed: Observed) -> None:
    # The run really carried them: the tool result had them in clear, and so did the
    # model's answer, which the agent's leak guardrail masked before the user saw it.
    refund_lookup = next(c for c in observed.result.tool_calls if c.tool == "lookup_order")
    assert EMAIL in json.dumps(refund_lookup.output)
    assert EMAIL not in (observed.result.output or "") and "[EMAIL]" in (
        observed.result.output or ""
    )
    assert ("data_leak", "masked") in [(e.kind, e.action) for e in observed.result.safety_events]

    telemetry_text = [observed.raw_logs]
    for span in observed.spans:
        telemetry_text.append(span.name)
        telemetry_text.append(json.dumps(dict(span.attributes or {}), default=str))
        telemetry_text.extend(
            json.dumps(dict(e.attributes or {}), default=str) for e in span.events
        )
    for points in observed.metrics.values():
        telemetry_text.extend(json.dumps(attributes) for attributes, _ in points)
    everything = "\n".join(telemetry_text)
    assert '"prompt"' in observed.raw_logs and '"completion"' in observed.raw_logs
    for secret in SECRETS:
        assert secret not in everything, f"{secret!r} leaked into telemetry"


async def test_worker_exposes_temporal_sdk_metrics_on_prometheus(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    import httpx

    from workers.devserver import free_port
    from workers.main import sdk_runtime

    port = free_port()
    settings = Settings(
        data_dir=tmp_path, task_queue="prom", metrics_port=port, worker_versioning=False
    )
    runtime = sdk_runtime(settings, host="127.0.0.1")
    assert runtime is not None
    address = dev_env.client.service_client.config.target_host
    temporal = await connect(address, runtime=runtime)
    activities = build_activities(settings, providers={"local": LocalProvider()})
    async with build_worker(temporal, settings, activities=activities), httpx.AsyncClient() as http:
        run_id = await OpsreadyClient(temporal, settings).start_run("support-triage", "hello")
        await OpsreadyClient(temporal, settings).result(run_id)
        body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert "temporal_workflow_completed" in body or "temporal_request" in body
