"""`opsready bench approval`: how long a human decision takes to move a parked run on.

Runs of the bench agent wait on an approval (their first tool always needs one), bare twins
on a decision; each is released in turn, interleaved, by: the `decide` update through
`OpsreadyClient.approve` (what the CLI does), a bare update, the `approval_decision` signal,
and a bare signal. Per decision: from sending it to the next activity scheduled (the
event's time in the history; same machine, same clock), and for updates until the caller
has its answer. The dev server runs with temporal-dev/'s dynamic config, whose
`history.transferProcessorMaxPollRPS=1000` keeps the transfer queue from pacing tasks."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from temporalio.api.enums.v1 import EventType

from opsready.client import OpsreadyClient
from opsready.console import advance, progress, table, table_text
from workers.devtools.bench import agent
from workers.devtools.bench.rig import (
    Bench,
    WorkerProcess,
    bench_server,
    footer,
    header,
    percentile,
    server_settings_note,
    until,
    verdict,
    worker_process,
)
from workers.devtools.bench.runs import finish, handle, is_parked, start_parked
from workflows.contract import Signal
from workflows.types import ApprovalDecision

KINDS = ("decide", "bare update", "signal", "bare signal")
PARKS = {"decide": "agent", "bare update": "bare", "signal": "agent", "bare signal": "bare"}


async def _send(bench: Bench, worker: WorkerProcess, kind: str, run_id: str) -> None:
    """Send one decision of `kind` and wait for its answer (updates) or acceptance."""
    if kind == "decide":
        await OpsreadyClient(bench.client, bench.settings(worker)).approve(run_id, agent.APPROVER)
    elif kind == "bare update":
        await handle(bench, run_id).execute_update("decide", True)
    elif kind == "signal":
        decision = ApprovalDecision(approved=True, approver=agent.APPROVER)
        await handle(bench, run_id).signal(Signal.APPROVAL_DECISION, decision)
    else:
        await handle(bench, run_id).signal("decision", True)


async def _next_scheduled(bench: Bench, run_id: str, after: float) -> float:
    """Wall time of the first activity scheduled after `after` (a time.time() value)."""
    async for event in handle(bench, run_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            at = event.event_time.ToNanoseconds() / 1e9
            if at >= after:
                return at
    raise RuntimeError(f"{run_id}: no activity was scheduled after the decision")


async def _one(bench: Bench, worker: WorkerProcess, kind: str, run_id: str) -> tuple[float, float]:
    """(sent -> next activity scheduled, sent -> answered) in seconds, for one decision."""
    sent, started = time.time(), time.perf_counter()
    await _send(bench, worker, kind, run_id)
    answered = time.perf_counter() - started
    await finish(bench, run_id)
    return await _next_scheduled(bench, run_id, sent) - sent, answered


async def _park(bench: Bench, worker: WorkerProcess, kind: str, n: int) -> list[str]:
    ids = [await start_parked(bench, worker, PARKS[kind]) for _ in range(n)]
    for run_id in ids:
        await until(lambda run_id=run_id: is_parked(bench, run_id), timeout=120)  # type: ignore[misc]
    return ids


async def _bench(decisions: int) -> dict[str, list[tuple[float, float]]]:
    taken: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        async with bench_server(root) as bench, worker_process(bench.address, root) as worker:
            with progress() as bar:
                task = bar.add_task("parking runs", total=1 + decisions)
                for kind in KINDS:  # warm-up: one of each
                    await _one(bench, worker, kind, (await _park(bench, worker, kind, 1))[0])
                parked = {kind: await _park(bench, worker, kind, decisions) for kind in KINDS}
                for i in range(decisions):
                    advance(bar, task, f"decision {i + 1}/{decisions}")
                    shift = i % len(KINDS)
                    for kind in [*KINDS[shift:], *KINDS[:shift]]:
                        taken[kind].append(await _one(bench, worker, kind, parked[kind][i]))
    return taken


def _ms(values: list[float]) -> tuple[str, str]:
    return f"{percentile(values, 50) * 1000:.1f}", f"{percentile(values, 95) * 1000:.1f}"


def report(decisions: int, taken: dict[str, list[tuple[float, float]]]) -> tuple[str, bool]:
    lines = header(f"approval: {decisions} decisions of each kind, interleaved, after a warm-up")
    lines.append(f"  {server_settings_note()}")
    rows = table("decision", "sent -> next activity p50 ms", "p95 ms", "answered p50 ms", "p95 ms")
    for kind in KINDS:
        scheduled = [s for s, _ in taken[kind]]
        answered = [a for _, a in taken[kind]] if "update" in kind or kind == "decide" else []
        rows.add_row(kind, *_ms(scheduled), *(_ms(answered) if answered else ("-", "-")))
    lines.append(table_text(rows))
    p50 = {kind: percentile([s for s, _ in taken[kind]], 50) for kind in KINDS}
    decide, signal = p50["decide"] / p50["bare update"], p50["signal"] / p50["bare signal"]
    lines.append(
        f"  ratio (p50, to the next activity): decide / bare update {decide:.2f} "
        f"(target <= 1.5: {verdict(decide <= 1.5)}), signal / bare signal {signal:.2f}"
    )
    lines.append(footer())
    return "\n".join(lines), decide <= 1.5


def run_bench(decisions: int = 30) -> int:
    from opsready.logs import configure_logging

    configure_logging(level="ERROR")
    text, met = report(decisions, asyncio.run(_bench(decisions)))
    print(text)
    return 0 if met else 1
