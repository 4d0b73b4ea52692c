"""`opsready bench overhead`: worker CPU, server CPU, throughput and history length of an
`AgentRun` against its bare twin (the same activity sequence on trivial activities).

One dev server, two bench workers in their own processes (telemetry off, telemetry on; the
bare twin runs on the first), rounds interleaved (bare, off, on, rotated each round) so
drift hits every side alike. Per run: the worker process's CPU time, the dev server's CPU
time, runs per second at the given concurrency, and the history's events."""

from __future__ import annotations

import asyncio
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from opsready.console import advance, progress, table, table_text
from workers.devtools.bench import agent
from workers.devtools.bench.bare import BareRequest
from workers.devtools.bench.rig import (
    Bench,
    Spread,
    bench_server,
    footer,
    header,
    run_all,
    verdict,
    worker_process,
)
from workers.devtools.bench.runs import finish, history_length, start_agent_run, start_bare

KINDS = ("bare", "off", "on")
LABELS = {"bare": "bare twin", "off": "AgentRun, telemetry off", "on": "AgentRun, telemetry on"}
PEER_RATIO = 2.4  # the OpenAI Agents SDK's Temporal plugin on the same workload (issue 13)


@dataclass(frozen=True)
class Sample:
    """One round of one kind: per-run figures."""

    worker_cpu: float
    server_cpu: float
    runs_per_second: float
    events: int


async def start_one(bench: Bench, kind: str, tool_calls: int) -> str:
    """Start one run of `kind` with K tool calls; its workflow id."""
    worker = bench.workers["on" if kind == "on" else "off"]
    if kind == "bare":
        return await start_bare(bench, worker, BareRequest(tool_calls))
    return await start_agent_run(bench, worker, agent.message(tool_calls), traced=kind == "on")


async def measure(bench: Bench, kind: str, tool_calls: int, runs: int, concurrency: int) -> Sample:
    worker = bench.workers["on" if kind == "on" else "off"]
    ids: list[str] = []

    async def one(_: int) -> None:
        run_id = await start_one(bench, kind, tool_calls)
        ids.append(run_id)
        await finish(bench, run_id)

    cpu, server = await worker.cpu(), bench.server_cpu()
    wall = await run_all(runs, concurrency, one)
    cpu, server = await worker.cpu() - cpu, bench.server_cpu() - server
    return Sample(cpu / runs, server / runs, runs / wall, await history_length(bench, ids[0]))


async def _bench(
    ks: list[int], runs: int, rounds: int, concurrency: int
) -> dict[tuple[int, str], list[Sample]]:
    samples: dict[tuple[int, str], list[Sample]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        async with (
            bench_server(root) as bench,
            worker_process(bench.address, root) as off,
            worker_process(bench.address, root, telemetry=True) as on,
        ):
            bench.workers.update(off=off, on=on)
            steps = [(r, k, kinds) for r in range(rounds) for k in ks for kinds in [_order(r)]]
            with progress() as bar:
                task = bar.add_task("warm-up", total=1 + len(steps))
                for k in ks:  # caches, connections, the first runs' imports
                    for kind in KINDS:
                        await measure(bench, kind, k, min(runs, 4), concurrency)
                for r, k, kinds in steps:
                    advance(bar, task, f"round {r + 1}/{rounds}, K={k}")
                    for kind in kinds:
                        samples[(k, kind)].append(await measure(bench, kind, k, runs, concurrency))
    return samples


def _order(round_: int) -> list[str]:
    """The kinds in a round, rotated each round so none is always first."""
    shift = round_ % len(KINDS)
    return [*KINDS[shift:], *KINDS[:shift]]


def report(
    ks: list[int],
    runs: int,
    rounds: int,
    concurrency: int,
    samples: dict[tuple[int, str], list[Sample]],
) -> tuple[str, bool]:
    lines = header(
        f"overhead: {runs} runs per kind per round, {rounds} rounds after a warm-up, "
        f"{concurrency} at once; median (min-max) over rounds"
    )
    rows = table("K", "run", "worker CPU/run ms", "server CPU/run ms", "runs/s", "events", "ratio")
    met = True
    checks: list[str] = []
    for k in ks:
        bare, off, on = (samples[(k, kind)] for kind in KINDS)
        vs_bare = Spread.of([o.worker_cpu / b.worker_cpu for o, b in zip(off, bare, strict=True)])
        on_off = Spread.of([n.worker_cpu / o.worker_cpu for n, o in zip(on, off, strict=True)])
        ratios = {
            "bare": "",
            "off": f"{vs_bare.show(digits=2)} x bare",
            "on": f"{on_off.show(digits=2)} x off",
        }
        for kind, taken in (("bare", bare), ("off", off), ("on", on)):
            rows.add_row(
                str(k),
                LABELS[kind],
                Spread.of([s.worker_cpu for s in taken]).show(1000),
                Spread.of([s.server_cpu for s in taken]).show(1000),
                Spread.of([s.runs_per_second for s in taken]).show(),
                "/".join(sorted({str(s.events) for s in taken})),
                ratios[kind],
            )
        steps = k + 1
        events_ok = max(s.events for s in off + on) <= min(s.events for s in bare) + 2 + steps
        ok = (vs_bare.median <= 1.5, on_off.median <= 1.1, vs_bare.median < PEER_RATIO, events_ok)
        met = met and all(ok)
        checks.append(
            f"  K={k}: telemetry off <= 1.5x bare: {verdict(ok[0])}; on <= 1.1x off: "
            f"{verdict(ok[1])}; below the peer's {PEER_RATIO}x: {verdict(ok[2])}; history <= "
            f"bare + 2 + {steps} steps: {verdict(ok[3])}"
        )
    lines += [table_text(rows), "targets (medians):", *checks, footer()]
    return "\n".join(lines), met


def run_bench(ks: list[int], runs: int = 10, rounds: int = 10, concurrency: int = 4) -> int:
    from opsready.logs import configure_logging

    configure_logging(level="ERROR")
    samples = asyncio.run(_bench(ks, runs, rounds, concurrency))
    text, met = report(ks, runs, rounds, concurrency, samples)
    print(text)
    return 0 if met else 1
