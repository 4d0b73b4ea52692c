"""`opsready bench burst`: one worker under a burst of new runs.

First, runs of the bench agent are parked on an approval (what an operator looks at), then
N new runs start at once while query loops ask `state`, back to back: on the parked runs
(the target), and on runs of the burst itself (reported: one whose first task is still
queued cannot answer before it). Then a larger burst on the same worker: every run's
history is searched for workflow-task timeouts and failures (a worker that takes on more
tasks than it finishes in time makes the server time them out and hand them out again,
which can livelock a host)."""

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
    until,
    verdict,
    worker_process,
)
from workers.devtools.bench.runs import finish, handle, is_parked, start_agent_run, start_parked
from workflows.contract import Query
from workflows.types import AgentRunState

QUERY_LOOPS = 4  # on the parked runs; one more on the burst's own runs
PARKED = 20
QUERY_TIMEOUT = timedelta(seconds=10)
TOOL_CALLS = 1


@dataclass
class Queries:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def show(self, what: str) -> str:
        if not self.latencies:
            return f"  state on {what}: none answered, {len(self.failures)} failed"
        ms = [percentile(self.latencies, p) * 1000 for p in (50, 95, 99)]
        return (
            f"  state on {what}: {len(self.latencies)} answered, {len(self.failures)} failed; "
            f"p50 {ms[0]:.0f} ms, p95 {ms[1]:.0f} ms, p99 {ms[2]:.0f} ms, "
            f"max {max(self.latencies) * 1000:.0f} ms"
        )

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99) if self.latencies else float("inf")


async def _query_loop(bench: Bench, runs: set[str], queries: Queries, done: asyncio.Event) -> None:
    """Query `state` on a random one of `runs`, back to back, until `done`."""
    while not done.is_set():
        if not runs:
            await asyncio.sleep(0.01)
            continue
        run_id = random.choice(sorted(runs))
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
    parked: Queries | None = None  # queries on runs parked before the burst
    own: Queries | None = None  # queries on the burst's runs in flight


async def burst(
    bench: Bench, worker: WorkerProcess, runs: int, parked: list[str] | None = None
) -> Burst:
    """Start `runs` runs at once and wait for all, querying `parked` (and the burst's runs)
    meanwhile when given."""
    in_flight: set[str] = set()
    ids: list[str] = []
    done = asyncio.Event()
    on_parked, on_own = Queries(), Queries()
    loops = []
    if parked is not None:
        targets = set(parked)
        loops = [_query_loop(bench, targets, on_parked, done) for _ in range(QUERY_LOOPS)]
        loops.append(_query_loop(bench, in_flight, on_own, done))
    tasks = [asyncio.create_task(loop) for loop in loops]

    async def one() -> None:
        run_id = await start_agent_run(bench, worker, agent.message(TOOL_CALLS))
        ids.append(run_id)
        in_flight.add(run_id)
        await finish(bench, run_id)
        in_flight.discard(run_id)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    wall = time.perf_counter() - started
    done.set()
    await asyncio.gather(*tasks)
    timeouts, failures = await task_trouble(bench, ids)
    if parked is None:
        return Burst(runs, wall, timeouts, failures)
    return Burst(runs, wall, timeouts, failures, on_parked, on_own)


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


async def _park(bench: Bench, worker: WorkerProcess) -> list[str]:
    ids = [await start_parked(bench, worker, "agent") for _ in range(PARKED)]
    for run_id in ids:
        await until(lambda run_id=run_id: is_parked(bench, run_id), timeout=120)  # type: ignore[misc]
    return ids


async def _bench(query_runs: int, burst_runs: int) -> tuple[str, list[Burst]]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        async with bench_server(root) as bench, worker_process(bench.address, root) as worker:
            with progress() as bar:
                task = bar.add_task(f"parking {PARKED} runs", total=3)
                parked = await _park(bench, worker)
                advance(bar, task, f"{query_runs} runs at once, querying state")
                first = await burst(bench, worker, query_runs, parked)
                advance(bar, task, f"{burst_runs} runs at once")
                second = await burst(bench, worker, burst_runs)
                advance(bar, task)
            return worker.slots, [first, second]


def report(slots: str, bursts: list[Burst]) -> tuple[str, bool]:
    first, second = bursts
    assert first.parked is not None and first.own is not None
    lines = header(
        f"burst: {first.runs} runs at once while {QUERY_LOOPS} loops query `state` on "
        f"{PARKED} runs parked before it (and one loop on the burst's runs), then "
        f"{second.runs} runs at once; one worker"
    )
    lines.append(f"  worker: {slots}")
    rows = table("burst", "runs", "all ended s", "task timeouts", "task failures")
    for name, taken in (("with queries", first), ("burst", second)):
        rows.add_row(
            name, str(taken.runs), f"{taken.wall:.1f}", str(taken.timeouts), str(taken.failures)
        )
    lines.append(table_text(rows))
    lines.append(first.parked.show("the parked runs"))
    lines.append(first.own.show("the burst's runs (first task may still be queued)"))
    for failure in first.parked.failures[:3]:
        lines.append(f"    {failure}")
    queries_ok = first.parked.p99 < 1.0 and not first.parked.failures
    tasks_ok = second.timeouts == 0
    lines.append(
        f"  targets: state p99 on the parked runs < 1 s during the first burst: "
        f"{verdict(queries_ok)}; no workflow-task timeouts in the {second.runs}-run burst: "
        f"{verdict(tasks_ok)}"
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
