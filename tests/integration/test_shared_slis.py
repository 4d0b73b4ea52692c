"""SLIs from Temporal visibility on the dev server, with two worker processes (each its own
data dir, as on two hosts, each on its own task queue so the test knows who ran what):
counts include the runs of both, the monitor inside one worker alerts on both workers'
runs, canary cohorts read the same source, and a queue's backlog comes from Temporal."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.outcomes import OutcomeStore
from opsready.incidents.service import Incidents
from opsready.runs import run_result, state_of
from opsready.settings import PROJECT_ROOT
from opsready.slo.source import VisibilitySliSource
from tests.conftest import write_agent
from tests.integration.test_cli import Done, eventually, one_line_error
from workflows import visibility
from workflows.contract import AGENT_RUN_WORKFLOW, SLO_MONITOR_SCHEDULE, SLO_MONITOR_WORKFLOW
from workflows.incident_types import Severity, incident_id
from workflows.rollout_types import Cohort
from workflows.sli_types import Tally
from workflows.slo_monitor_types import SloMonitorInput, SloMonitorReport
from workflows.slo_types import SliCounts, Slo, SloKind
from workflows.types import AgentRunRequest, AgentRunResult, RunStatus

pytestmark = pytest.mark.integration

AGENT = "slo-tester"
QUIET = "quiet"  # an agent with no runs: nothing to alert on
DEFINITION = """
name = "{name}"
version = "1.0.0"
model = "scripted/test"
prompt_version = "v1"
[prompts.v1]
system = "You are a test agent."
[tools.lookup_order]
[tools.search_kb]

[slo.success]
kind = "task_success"
objective = 0.95

[slo.tool_errors]
kind = "tool_error_rate"
objective = 0.99

[slo.safety]
kind = "safety_event_rate"
objective = 0.9
"""
# Each worker alone has fewer runs than a burn pair needs (10 events in the long window);
# together, 11 failures out of 14 burn the budget at 15.7x: only a source that counts both
# workers' runs pages.
RUNS = {
    "a": ["fail"] * 6 + ["tool-error"],
    "b": ["fail"] * 5 + ["answer", "unsafe"],
}
# As the agents declare them (three, to keep the visibility counts of the report few).
SUCCESS = Slo(name="success", kind=SloKind.TASK_SUCCESS, objective=0.95)
TOOL_ERRORS = Slo(name="tool_errors", kind=SloKind.TOOL_ERROR_RATE, objective=0.99)
# Loose, so that only task success pages: 1 unsafe run in 14 does not burn 10%.
SAFETY = Slo(name="safety", kind=SloKind.SAFETY_EVENT_RATE, objective=0.9)


@dataclass
class Fleet:
    client: Client
    root: Path
    task_queues: dict[str, str]  # worker -> its task queue
    results: dict[str, list[AgentRunResult]]  # worker -> the results of its runs
    run_ids: dict[str, list[str]]
    started: datetime

    def store(self, worker: str) -> OutcomeStore:
        return OutcomeStore(self.root / worker / "data" / "outcomes.sqlite")


@asynccontextmanager
async def worker_process(address: str, task_queue: str, root: Path) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.scripted_worker",
        *("--address", address, "--task-queue", task_queue),
        *("--data-dir", str(root / "data"), "--agents-dir", str(root.parent / "agents")),
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line.strip() == b"ready", line
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


@pytest.fixture(scope="module")
async def fleet(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Fleet]:
    root = tmp_path_factory.mktemp("slis")
    for name in (AGENT, QUIET):
        write_agent(root / "agents", name, DEFINITION.format(name=name))
    address = dev_env.client.service_client.config.target_host
    suffix = uuid.uuid4().hex[:6]
    task_queues = {worker: f"slis-{worker}-{suffix}" for worker in RUNS}
    started = datetime.now(UTC)
    async with AsyncExitStack() as workers:
        await asyncio.gather(
            *(
                workers.enter_async_context(worker_process(address, task_queues[w], root / w))
                for w in RUNS
            )
        )
        run_ids = {
            w: [f"{AGENT}-{w}-{i}-{suffix}" for i in range(len(texts))] for w, texts in RUNS.items()
        }
        handles = {
            w: [
                await dev_env.client.start_workflow(
                    AGENT_RUN_WORKFLOW,
                    AgentRunRequest(agent=AGENT, input=f"{text} {i}"),
                    id=run_ids[w][i],
                    task_queue=task_queues[w],
                    result_type=AgentRunResult,
                )
                for i, text in enumerate(texts)
            ]
            for w, texts in RUNS.items()
        }
        results = {  # failed runs close Failed, their result in the failure
            w: list(await asyncio.gather(*(run_result(h) for h in hs))) for w, hs in handles.items()
        }
        yield Fleet(dev_env.client, root, task_queues, results, run_ids, started)


async def counted(source: VisibilitySliSource, slo: Slo, total: int) -> SliCounts:
    """The SLO's counts over the last hour, once visibility has every run (it is eventual)."""

    async def probe() -> SliCounts | None:
        now = datetime.now(UTC)
        runs = await source.count(
            f"WorkflowType = 'AgentRun' AND AgentName = '{AGENT}' AND ExecutionStatus != 'Running'"
        )
        return (
            None
            if runs < total
            else await source.slo_counts(AGENT, slo, now - timedelta(hours=1), now)
        )

    return await eventually(probe)


async def test_slis_count_the_runs_of_both_worker_processes(fleet: Fleet) -> None:
    results = [r for rs in fleet.results.values() for r in rs]
    assert {r.status for r in fleet.results["a"]} == {RunStatus.FAILED, RunStatus.COMPLETED}
    source = VisibilitySliSource(fleet.client)

    success = await counted(source, SUCCESS, len(results))
    completed = sum(1 for r in results if r.status is RunStatus.COMPLETED)
    assert (success.good, success.total) == (completed, len(results))

    # Tool calls and safety events, summed from the runs' own results.
    def tally(tally: Tally) -> int:
        return sum(visibility.tallies(state_of(AGENT, r))[tally] for r in results)

    tools = await source.slo_counts(AGENT, TOOL_ERRORS, fleet.started, datetime.now(UTC))
    calls, errors = tally(Tally.TOOL_CALLS), tally(Tally.TOOL_ERRORS)
    assert (calls, errors) == (1, 1)  # worker a's tool-error run
    assert (tools.good, tools.total) == (calls - errors, calls)
    safety = await source.slo_counts(AGENT, SAFETY, fleet.started, datetime.now(UTC))
    unsafe = sum(1 for r in results if r.safety_events)
    assert unsafe >= 1  # worker b's unsafe run
    assert (safety.good, safety.total) == (len(results) - unsafe, len(results))

    # Each host's own store holds only its own runs: it cannot be the shared source.
    for worker, ids in fleet.run_ids.items():
        assert sorted(o.run_id for o in fleet.store(worker).read(AGENT)) == sorted(ids)


async def test_the_monitor_inside_one_worker_alerts_on_the_runs_of_both(fleet: Fleet) -> None:
    source = VisibilitySliSource(fleet.client)
    await counted(source, SUCCESS, sum(len(r) for r in fleet.results.values()))
    report = await fleet.client.execute_workflow(
        SLO_MONITOR_WORKFLOW,
        SloMonitorInput(agents=[AGENT], task_queues=[fleet.task_queues["b"]], open_incidents=False),
        id=f"slo-monitor-test-{uuid.uuid4().hex[:6]}",
        task_queue=fleet.task_queues["b"],  # read by worker b's process, with its own client
        result_type=SloMonitorReport,
    )
    pages = {a.name: a for a in report.alerts if a.kind == "slo_burn" and a.action == "page"}
    assert pages["success"].dedup_key == f"{AGENT}:slo:success"
    assert pages["success"].numbers["long_burn_rate"] == pytest.approx((11 / 14) / 0.05)
    assert report.requested == [] and report.problems == []


async def test_a_monitor_pass_opens_a_real_incident_and_the_next_pass_leaves_it(
    fleet: Fleet,
) -> None:
    source = VisibilitySliSource(fleet.client)
    await counted(source, SUCCESS, sum(len(r) for r in fleet.results.values()))
    queue, key = fleet.task_queues["b"], f"{AGENT}:slo:success"

    async def one_pass() -> SloMonitorReport:
        report: SloMonitorReport = await fleet.client.execute_workflow(
            SLO_MONITOR_WORKFLOW,
            SloMonitorInput(agents=[AGENT], task_queues=[queue]),
            id=f"slo-monitor-test-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
            result_type=SloMonitorReport,
        )
        return report

    first = await one_pass()
    incidents = Incidents(fleet.client, queue)
    try:
        assert (first.requested, first.failed) == ([key], [])
        incident = await incidents.status(incident_id(key))
        assert incident.trigger.kind == "slo_burn" and incident.user_impact == "many"
        assert incident.severity is Severity.SEV2  # many users affected (default matrix)
        failed = {
            run_id
            for w in RUNS
            for run_id, result in zip(fleet.run_ids[w], fleet.results[w], strict=True)
            if result.status is RunStatus.FAILED
        }
        assert set(incident.affected_run_ids) == failed  # from both workers
        assert incident.first_bad_at is not None and incident.first_bad_at >= fleet.started
        second = await one_pass()
        assert second.requested == [] and second.already_open == [key]
    finally:
        await incidents.resolve(incident_id(key), by="test", summary="test over")


async def test_the_next_incident_of_a_key_blames_no_run_the_last_one_closed_over(
    fleet: Fleet,
) -> None:
    """The failures are still in the burn window after the incident above was resolved, so
    the next pass opens the key again; but those runs were the last incident's, so the new
    one blames none of them and does not date its MTTD from them."""
    source = VisibilitySliSource(fleet.client)
    queue, key = fleet.task_queues["b"], f"{AGENT}:slo:success"
    closed = await eventually(lambda: source.incident_closed_at(key), timeout=90)
    assert closed > max(o.ended_at for w in RUNS for o in fleet.store(w).read(AGENT))
    report = await fleet.client.execute_workflow(
        SLO_MONITOR_WORKFLOW,
        SloMonitorInput(agents=[AGENT], task_queues=[queue]),
        id=f"slo-monitor-test-{uuid.uuid4().hex[:6]}",
        task_queue=queue,
        result_type=SloMonitorReport,
    )
    incidents = Incidents(fleet.client, queue)
    try:
        assert report.requested == [key]
        again = await incidents.status(incident_id(key))
        assert again.affected_run_ids == [] and again.first_bad_at is None
    finally:
        await incidents.resolve(incident_id(key), by="test", summary="test over")


async def test_canary_cohorts_read_the_same_runs_as_both_hosts_stores_together(
    fleet: Fleet,
) -> None:
    cohort = Cohort(flag="agent-variant", variation=0, agent=AGENT, since=fleet.started)
    shared = await VisibilitySliSource(fleet.client).cohort_stats(cohort)
    outcomes = [o for w in RUNS for o in fleet.store(w).read(AGENT)]
    assert shared.runs == len(outcomes) == 14
    assert shared.successes == sum(1 for o in outcomes if o.status is RunStatus.COMPLETED)
    assert shared.safety_events_per_run == pytest.approx(
        sum(o.safety_events for o in outcomes) / len(outcomes)
    )
    other = cohort.model_copy(update={"variation": 1})
    assert (await VisibilitySliSource(fleet.client).cohort_stats(other)).runs == 0


async def test_backlog_comes_from_the_task_queue_statistics(dev_env: WorkflowEnvironment) -> None:
    queue = f"no-worker-{uuid.uuid4().hex[:6]}"
    for i in range(3):
        await dev_env.client.start_workflow(
            AGENT_RUN_WORKFLOW,
            AgentRunRequest(agent=AGENT, input="nobody polls"),
            id=f"{queue}-{i}",
            task_queue=queue,
        )
    source = VisibilitySliSource(dev_env.client)

    async def backlog() -> int | None:
        found = {b.task_queue: b.backlog for b in await source.backlog(queue)}
        waiting = found[f"{queue} (workflow tasks)"]
        return waiting if waiting >= 3 else None

    assert await eventually(backlog) == 3


# --- the CLI on the same runs -----------------------------------------------------------


async def opsready(fleet: Fleet, *args: str) -> Done:
    env = {
        **os.environ,
        "OPSREADY_AGENTS_DIR": str(fleet.root / "agents"),
        "OPSREADY_TASK_QUEUE": fleet.task_queues["b"],
        "OPSREADY_DATA_DIR": str(fleet.root / "cli"),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    address = fleet.client.service_client.config.target_host
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "starters.cli", "--address", address, *args),
        env=env,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Done(process.returncode, out.decode(), err.decode())


async def test_slo_status_shows_budgets_and_burn_rates_of_both_workers_runs(fleet: Fleet) -> None:
    done = await opsready(fleet, "slo", "status", "--agent", AGENT, "--json")
    assert done.code == 0, done.err
    shown = {s["slo"]["name"]: s for s in json.loads(done.out)}
    success = shown["success"]
    assert (success["budget"]["good"], success["budget"]["total"]) == (3, 14)
    assert success["budget"]["remaining"] == pytest.approx(1 - 11 / (14 * 0.05))
    fast = success["burns"][0]
    assert (fast["window"], fast["is_alerting"]) == ("1h/5m", True)
    table = await opsready(fleet, "slo", "status", "--agent", AGENT)
    row = next(line for line in table.out.splitlines() if line.split()[1:2] == ["success"])
    assert "15.7x/15.7x PAGE" in row and "-1471.4%" in row

    one_line_error(await opsready(fleet, "slo", "status", "--agent", "nope"), "unknown agent")


async def test_slo_report_is_one_html_file_with_plots(fleet: Fleet) -> None:
    page = fleet.root / "report" / "slo.html"
    report = ("slo", "report", "--agent", AGENT, "--html", str(page))
    done = await opsready(fleet, *report, "--days", "1", "--points", "3")
    assert done.code == 0, done.err
    text = page.read_text()
    assert text.count("<svg") == 3 + 1  # every SLO, and cost per success
    assert "src=" not in text and "<script" not in text


async def test_slo_monitor_schedule_starts_a_pass_pauses_and_says_so(fleet: Fleet) -> None:
    one_line_error(await opsready(fleet, "slo", "monitor", "pause"), "opsready slo monitor start")
    started = await opsready(fleet, "slo", "monitor", "start", "--every", "1m", "--agent", QUIET)
    try:
        assert started.code == 0, started.err
        assert "running (every 60s, quiet" in started.out

        async def a_finished_pass() -> dict[str, Any] | None:
            done = await opsready(fleet, "slo", "monitor", "status", "--json")
            state = json.loads(done.out)
            passes = [p for p in state["recent"] if p["status"] == "completed"]
            return passes[0] if passes else None

        finished = await eventually(a_finished_pass, timeout=30)
        assert finished["report"]["agents"] == [QUIET] and finished["report"]["alerts"] == []

        paused = await opsready(fleet, "slo", "monitor", "pause", "--reason", "maintenance")
        assert paused.code == 0 and "PAUSED" in paused.out and "note: maintenance" in paused.out
        status = await opsready(fleet, "slo", "monitor", "status", "--json")
        assert json.loads(status.out)["paused"] is True
    finally:
        await fleet.client.get_schedule_handle(SLO_MONITOR_SCHEDULE).delete()
