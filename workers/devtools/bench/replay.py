"""`opsready bench replay`: how fast a worker replays a long `AgentRun` history, against the
bare twin's history with the same number of tool calls.

Both histories are recorded once on a throw-away dev server (a bench worker runs them),
then replayed in this process by a `Replayer` wired like a worker (the plugin's converter
and sandbox settings), in interleaved rounds: events replayed per second of wall time and
of this process's CPU time. A replay is what a worker does to rebuild a run it evicted from
its cache (a query or a new task for it after a restart)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from opsready.console import advance, progress, table, table_text
from opsready.plugin import OpsreadyPlugin
from workers.app import WORKFLOWS
from workers.devtools.bench import agent
from workers.devtools.bench.bare import BareRequest, BareRun, bare_runner
from workers.devtools.bench.rig import (
    Spread,
    bench_server,
    footer,
    header,
    verdict,
    worker_process,
)
from workers.devtools.bench.runs import finish, handle, start_agent_run, start_bare

KINDS = ("agent", "bare")
LABELS = {"agent": "AgentRun", "bare": "bare twin"}
TARGET = 2500.0


async def record(tool_calls: int) -> dict[str, WorkflowHistory]:
    """One history of each kind with `tool_calls` tool calls."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        async with bench_server(root) as bench, worker_process(bench.address, root) as worker:
            ids = {
                "agent": await start_agent_run(bench, worker, agent.message(tool_calls)),
                "bare": await start_bare(bench, worker, BareRequest(tool_calls)),
            }
            histories = {}
            for kind, run_id in ids.items():
                await finish(bench, run_id)
                histories[kind] = await handle(bench, run_id).fetch_history()
    return histories


def replayer() -> Replayer:
    return Replayer(
        workflows=[*WORKFLOWS, BareRun],
        plugins=[OpsreadyPlugin(tracing=False)],
        workflow_runner=bare_runner(),
    )


async def replay(history: WorkflowHistory, copies: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to replay `copies` copies of `history`."""

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for _ in range(copies):
            yield history

    wall, cpu = time.perf_counter(), time.process_time()
    results = await replayer().replay_workflows(histories(), raise_on_replay_failure=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    failed = [e for e in results.replay_failures.values() if e is not None]
    if failed:
        raise RuntimeError(f"replay failed: {failed[0]}")
    return wall, cpu


async def _bench(
    tool_calls: int, copies: int, rounds: int
) -> tuple[dict[str, int], dict[str, list[tuple[float, float]]]]:
    histories = await record(tool_calls)
    events = {kind: len(history.events) for kind, history in histories.items()}
    rates: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
    with progress() as bar:
        task = bar.add_task("warm-up", total=1 + rounds)
        for kind in KINDS:
            await replay(histories[kind], 2)
        for r in range(rounds):
            advance(bar, task, f"round {r + 1}/{rounds}")
            for kind in KINDS if r % 2 == 0 else reversed(KINDS):
                wall, cpu = await replay(histories[kind], copies)
                done = events[kind] * copies
                rates[kind].append((done / wall, done / cpu))
    return events, rates


def report(
    tool_calls: int,
    copies: int,
    rounds: int,
    events: dict[str, int],
    rates: dict[str, list[tuple[float, float]]],
) -> tuple[str, bool]:
    lines = header(
        f"replay: histories with {tool_calls} tool calls, {copies} replays of each per round, "
        f"{rounds} rounds interleaved after a warm-up; median (min-max) over rounds"
    )
    rows = table("history", "events", "events/s (wall)", "events/s (CPU)")
    for kind in KINDS:
        rows.add_row(
            LABELS[kind],
            str(events[kind]),
            Spread.of([w for w, _ in rates[kind]]).show(digits=0),
            Spread.of([c for _, c in rates[kind]]).show(digits=0),
        )
    lines.append(table_text(rows))
    median = Spread.of([w for w, _ in rates["agent"]]).median
    lines.append(
        f"  target: AgentRun >= {TARGET:,.0f} events/s (wall): {verdict(median >= TARGET)}"
    )
    lines.append(footer())
    return "\n".join(lines), median >= TARGET


def run_bench(tool_calls: int = 100, copies: int = 10, rounds: int = 5) -> int:
    from opsready.logs import configure_logging

    configure_logging(level="ERROR")
    events, rates = asyncio.run(_bench(tool_calls, copies, rounds))
    text, met = report(tool_calls, copies, rounds, events, rates)
    print(text)
    return 0 if met else 1
