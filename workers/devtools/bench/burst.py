"""`opsready bench burst`: one worker under a burst of new runs.

First, N runs of the bench agent start at once while operators query `state` on the runs in
flight (several query loops, back to back): the query latency percentiles and how many
failed. Then a larger burst on the same worker: every run's history is searched for
workflow-task timeouts and failures (a worker that takes on more tasks than it can finish in
time makes the server time them out and hand them out again, which can livelock a host)."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from opsready.console import advance, progress, table, table_text
from workers.devtools.bench import agent
from workers.devtools.bench.rig import (
    Bench,
    WorkerProcess,
    bench_server,
    footer,
    header,
    percentile,
    verdict,
    worker_process,
)
from workers.devtools.bench.runs import finish, handle, start_agent_run
from workflows.contract import Query
from workflows.types import AgentRunState

QUERY_LOOPS = 4
QUERY_TIMEOUT = timedelta(seconds=10)
TOOL_CALLS = 1


async def _burst(
    bench: Bench, worker: WorkerProcess, runs: int, in_flight: set[str]
) -> tuple[float, list[str]]:
    """Start `runs` runs at once and wait for all; the wall seconds and the run ids."""
    ids: list[str] = []
    started = time.perf_counter()

    async def one() -> None:
        run_id = await start_agent_run(bench, worker, agent.message(TOOL_CALLS))
        ids.append(run_id)
        in_flight.add(run_id)
        await finish(bench, run_id)
        in_flight.discard(run_id)

    await asyncio.gather(*(one() for _ in range(runs)))
    return time.perf_counter() - started, ids


@dataclass
class Queries:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def _query_loop(
    bench: Bench, in_flight: set[str], queries: Queries, done: asyncio.Event
) -> None:
    """Query `state` on a random run in flight, back to back, until `done`."""
    while not done.is_set():
        if not in_flight:
            await asyncio.sleep(0.01)
            continue
        run_id = random.choice(sorted(in_flight))
        started = time.perf_counter()
        try:
            await handle(bench, run_id).query(
                Query.STATE, result_type=AgentRunState, rpc_timeout=QUERY_TIMEOUT
            )
            queries.latencies.append(time.perf_counter() - started)
        except (RPCError, WorkflowQueryFailedError) as err:
            queries.failures.append(f"{run_id}: {err}")


@dataclass
class Burst:
    runs: int
    wall: float
    timeouts: int
    failures: int
    queries: Queries | None = None


async def burst(bench: Bench, worker: WorkerProcess, runs: int, *, query: bool) -> Burst:
    in_flight: set[str] = set()
    queries, done = Queries(), asyncio.Event()
    loops = [
        asyncio.create_task(_query_loop(bench, in_flight, queries, done))
        for _ in range(QUERY_LOOPS if query else 0)
    ]
    wall, ids = await _burst(bench, worker, runs, in_flight)
    done.set()
    await asyncio.gather(*loops)
    timeouts, failures = await task_trouble(bench, ids)
    return Burst(runs, wall, timeouts, failures, queries if query else None)


async def task_trouble(bench: Bench, run_ids: list[str]) -> tuple[int, int]:
    """(workflow-task timeouts, workflow-task failures) over these runs' histories."""
    timeouts = failures = 0
    for run_id in run_ids:
        async for event in handle(bench, run_id).fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                timeouts += 1
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failures += 1
    return timeouts, failures


async def _bench(query_runs: int, burst_runs: int) -> tuple[str, list[Burst]]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        async with bench_server(root) as bench, worker_process(bench.address, root) as worker:
            with progress() as bar:
                task = bar.add_task("warm-up", total=3)
                for _ in range(3):
                    await finish(bench, await start_agent_run(bench, worker, agent.message(1)))
                advance(bar, task, f"{query_runs} runs at once, querying state")
                first = await burst(bench, worker, query_runs, query=True)
                advance(bar, task, f"{burst_runs} runs at once")
                second = await burst(bench, worker, burst_runs, query=False)
                advance(bar, task)
            return worker.slots, [first, second]


def report(slots: str, bursts: list[Burst]) -> tuple[str, bool]:
    first, second = bursts
    assert first.queries is not None
    latencies = first.queries.latencies
    lines = header(
        f"burst: {first.runs} runs at once with {QUERY_LOOPS} loops querying `state` on runs "
        f"in flight, then {second.runs} runs at once; one worker"
    )
    lines.append(f"  worker: {slots}")
    rows = table("burst", "runs", "all ended s", "task timeouts", "task failures")
    for name, taken in (("with queries", first), ("burst", second)):
        rows.add_row(
            name, str(taken.runs), f"{taken.wall:.1f}", str(taken.timeouts), str(taken.failures)
        )
    lines.append(table_text(rows))
    p99 = percentile(latencies, 99) if latencies else float("inf")
    lines.append(
        f"  state queries: {len(latencies)} answered, {len(first.queries.failures)} failed; "
        f"p50 {percentile(latencies, 50) * 1000:.0f} ms, p95 {percentile(latencies, 95) * 1000:.0f} "
        f"ms, p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        if latencies
        else f"  state queries: none answered, {len(first.queries.failures)} failed"
    )
    for failure in first.queries.failures[:3]:
        lines.append(f"    {failure}")
    queries_ok = p99 < 1.0 and not first.queries.failures
    tasks_ok = second.timeouts == 0
    lines.append(
        f"  targets: state p99 < 1 s during the first burst: {verdict(queries_ok)}; no "
        f"workflow-task timeouts in the {second.runs}-run burst: {verdict(tasks_ok)}"
    )
    lines.append(footer())
    return "\n".join(lines), queries_ok and tasks_ok


def run_bench(query_runs: int = 200, burst_runs: int = 500) -> int:
    from opsready.logs import configure_logging

    configure_logging(level="ERROR")
    slots, bursts = asyncio.run(_bench(query_runs, burst_runs))
    text, met = report(slots, bursts)
    print(text)
    return 0 if met else 1
