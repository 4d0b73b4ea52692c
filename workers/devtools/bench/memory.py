"""`opsready bench memory`: worker memory per run parked on an approval, against bare twins
parked on a decision, each kind in a fresh worker process whose workflow cache holds every
run (`max_cached_workflows` above the runs in flight).

Per kind: start the worker, finish a few runs (imports, caches, pools), read its RSS; park
N runs, wait until the worker is idle, read its RSS again; the difference over N is the
memory one parked run holds."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path

from opsready.console import advance, progress, table, table_text
from workers.devtools.bench import agent
from workers.devtools.bench.bare import BareRequest
from workers.devtools.bench.rig import (
    Bench,
    WorkerProcess,
    bench_server,
    footer,
    header,
    run_all,
    until,
    verdict,
    worker_process,
)
from workers.devtools.bench.runs import (
    finish,
    is_parked,
    start_agent_run,
    start_bare,
    start_parked,
)

KINDS = ("bare", "agent")
LABELS = {"bare": "bare twin (parked on a decision)", "agent": "AgentRun (awaiting approval)"}
WARM_UP_RUNS = 5
IDLE_CPU = 0.02  # CPU seconds per second below which the worker counts as idle
MiB = 1024 * 1024


async def _idle(worker: WorkerProcess, *, quiet_for: float = 2.0, timeout: float = 600) -> None:
    """Until the worker has used less than IDLE_CPU of a core for `quiet_for` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = await worker.cpu()
        await asyncio.sleep(quiet_for)
        if await worker.cpu() - before < IDLE_CPU * quiet_for:
            return
    raise TimeoutError("the worker never went idle")


async def _warm_up(bench: Bench, worker: WorkerProcess, kind: str) -> None:
    for _ in range(WARM_UP_RUNS):
        if kind == "bare":
            run_id = await start_bare(bench, worker, BareRequest(1))
        else:
            run_id = await start_agent_run(bench, worker, agent.message(1))
        await finish(bench, run_id)


async def measure(bench: Bench, root: Path, kind: str, runs: int, starts_at_once: int) -> int:
    """RSS bytes per parked run of `kind`, in a fresh worker."""
    async with worker_process(bench.address, root, max_cached=runs + 100) as worker:
        await _warm_up(bench, worker, kind)
        await _idle(worker)
        before = worker.rss()
        ids: list[str] = []

        async def park(_: int) -> None:
            ids.append(await start_parked(bench, worker, kind))

        await run_all(runs, starts_at_once, park)
        await _idle(worker)
        for run_id in random.sample(ids, min(20, len(ids))):  # parked, not merely quiet
            await until(lambda run_id=run_id: is_parked(bench, run_id), timeout=120)  # type: ignore[misc]
        return (worker.rss() - before) // runs


async def _bench(runs: int, starts_at_once: int) -> dict[str, int]:
    per_run: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        async with bench_server(root) as bench:
            with progress() as bar:
                task = bar.add_task(f"parking {runs} {KINDS[0]} runs", total=len(KINDS))
                for i, kind in enumerate(KINDS):
                    per_run[kind] = await measure(bench, root, kind, runs, starts_at_once)
                    upcoming = f"parking {runs} {KINDS[i + 1]} runs" if i + 1 < len(KINDS) else None
                    advance(bar, task, upcoming)
    return per_run


def report(runs: int, per_run: dict[str, int]) -> tuple[str, bool]:
    lines = header(
        f"memory: {runs} parked runs per kind, each kind in a fresh worker process "
        f"(max_cached_workflows {runs + 100}); RSS after parking minus RSS after {WARM_UP_RUNS} "
        "warm-up runs"
    )
    rows = table("run", "RSS per parked run KiB", f"for {runs} runs MiB")
    for kind in KINDS:
        rows.add_row(
            LABELS[kind], f"{per_run[kind] / 1024:.1f}", f"{per_run[kind] * runs / MiB:.1f}"
        )
    lines.append(table_text(rows))
    ratio = per_run["agent"] / max(per_run["bare"], 1)
    lines.append(f"  ratio AgentRun / bare: {ratio:.2f} (target <= 2.0: {verdict(ratio <= 2.0)})")
    lines.append(footer())
    return "\n".join(lines), ratio <= 2.0


def run_bench(runs: int = 1000, starts_at_once: int = 20) -> int:
    from opsready.logs import configure_logging

    configure_logging(level="ERROR")
    text, met = report(runs, asyncio.run(_bench(runs, starts_at_once)))
    print(text)
    return 0 if met else 1
