"""`opsready bench telemetry`: what telemetry costs the worker, measured, not guessed.

Runs the demo scenarios (a message answered on its own, a refund approved through the
`decide` update) N times with telemetry off and N times with it on, in one process against
one throw-away dev server, alternating rounds so drift hits both sides alike, and prints the
process CPU time per run and the ratio on/off.

off: no tracing interceptor, no-op tracer and meter, no correlation interceptor, logs at
     WARNING (the per-call records are not emitted).
on:  TracingInterceptor + SDK tracer with a batch processor (spans exported, then dropped),
     SDK meter with an in-memory reader, correlation interceptor, JSON logs at INFO
     (rendered and written to /dev/null).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

from activities.models.local import LocalProvider
from opsready.client import OpsreadyClient
from opsready.connection import connect
from opsready.console import advance, progress
from opsready.logs import configure_logging
from opsready.settings import Settings
from workers.devtools.bench.telemetry import telemetry_off, telemetry_on
from workflows.types import RunStatus

ANSWERED = "Where is my order A-1003? It was due days ago and it is late."
APPROVED = "My headphones from order A-1002 arrived broken, I want a refund."


async def _one_run(client: OpsreadyClient, text: str) -> None:
    run_id = await client.start_run("support-triage", text, user_id="bench", tenant_id="b")
    if text == APPROVED:
        while True:
            if (await client.state(run_id)).status is RunStatus.AWAITING_APPROVAL:
                break
            await asyncio.sleep(0.01)
        await client.approve(run_id, "alice")
    result = await client.result(run_id)
    assert result.status is RunStatus.COMPLETED, result.reason


async def _round(address: str, settings: Settings, mode: str, runs: int) -> float:
    """CPU seconds per run for `runs` runs in `mode`."""
    from workers.app import build_activities, build_worker

    telemetry = telemetry_on() if mode == "on" else telemetry_off()
    with open(os.devnull, "w") as sink:  # noqa: ASYNC230 (opening /dev/null does not block)
        configure_logging(fmt="json", stream=sink, level="INFO" if mode == "on" else "WARNING")
        temporal = await connect(address, telemetry=telemetry if mode == "on" else None)
        client = OpsreadyClient(temporal, settings)
        activities = build_activities(
            settings, providers={"local": LocalProvider()}, telemetry=telemetry
        )
        async with build_worker(
            temporal, settings, activities=activities, correlation=mode == "on"
        ):
            await _one_run(client, ANSWERED)  # warm-up: caches, connections
            started = time.process_time()
            for i in range(runs):
                await _one_run(client, ANSWERED if i % 2 == 0 else APPROVED)
            spent = time.process_time() - started
        if mode == "on":
            telemetry.shutdown()
    return spent / runs


async def _bench(runs: int, rounds: int) -> float:
    from workers.devserver import local_temporal

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(  # unversioned: the bench measures telemetry, not routing
            data_dir=Path(scratch),
            task_queue=f"bench-{uuid.uuid4().hex[:6]}",
            worker_versioning=False,
        )
        async with local_temporal(settings) as server:
            per_run: dict[str, list[float]] = {"off": [], "on": []}
            steps = [(r, mode) for r in range(1, rounds + 1) for mode in ("off", "on")]
            with progress() as bar:
                task = bar.add_task(_step(*steps[0], rounds), total=len(steps))
                for i, (_, mode) in enumerate(steps):
                    per_run[mode].append(await _round(server.address, settings, mode, runs))
                    upcoming = steps[i + 1] if i + 1 < len(steps) else None
                    advance(bar, task, _step(*upcoming, rounds) if upcoming else None)
    configure_logging()
    off, on = (min(per_run[m]) for m in ("off", "on"))
    print(f"runs per round: {runs}, rounds: {rounds} (demo scenarios: answered + approved)")
    for mode in ("off", "on"):
        values = ", ".join(f"{v * 1000:.1f}" for v in per_run[mode])
        print(
            f"  telemetry {mode:<3}: CPU per run {min(per_run[mode]) * 1000:.1f} ms (rounds: {values})"
        )
    ratio = on / off
    mean = sum(per_run["on"]) / sum(per_run["off"])
    print(f"  ratio on/off: best round each {ratio:.3f}, mean {mean:.3f}  (target <= 1.10)")
    return ratio


def _step(round_: int, mode: str, rounds: int) -> str:
    return f"round {round_}/{rounds}, telemetry {mode}"


def run_bench(runs: int = 40, rounds: int = 3) -> int:
    asyncio.run(_bench(runs, rounds))
    return 0
