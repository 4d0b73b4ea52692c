"""A bench worker in a process of its own (`python -m workers.devtools.bench.worker`), so the
bench reads its CPU time and memory from /proc without counting the starter's work.

It serves `AgentRun` (the bench agent, the local provider) and the bare twin on one task
queue, with telemetry off or on as `opsready bench telemetry` defines them, prints `ready`
once it polls, and runs until SIGTERM or until its stdin closes."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from opsready.connection import connect
from opsready.logs import configure_logging
from opsready.settings import Settings
from workers.devtools.bench import agent
from workers.devtools.bench.bare import BareRun, bare_activities, bare_runner
from workers.devtools.bench.telemetry import quiet_runtime, telemetry_off, telemetry_on

READY = "ready"
CPU = "cpu"


def bench_settings(root: Path, task_queue: str, max_cached_workflows: int = 1000) -> Settings:
    """Unversioned (the benches measure the run, not routing), agents from the scratch dir,
    the worker's default limits but for the workflow cache."""
    return Settings(
        agents_dir=root / "agents",
        data_dir=root / f"data-{task_queue}",
        task_queue=task_queue,
        worker_versioning=False,
        max_cached_workflows=max_cached_workflows,
    )


async def serve(address: str, settings: Settings, telemetry_on_: bool) -> None:
    from workers.app import build_activities, build_worker, describe_limits

    telemetry = telemetry_on() if telemetry_on_ else telemetry_off()
    with open(os.devnull, "w") as sink:  # noqa: ASYNC230 (opening /dev/null does not block)
        configure_logging(fmt="json", stream=sink, level="INFO" if telemetry_on_ else "WARNING")
        client = await connect(
            address, telemetry=telemetry if telemetry_on_ else None, runtime=quiet_runtime()
        )
        activities = build_activities(
            settings,
            providers={"local": agent.provider()},
            tools=agent.tools(),
            telemetry=telemetry,
        )
        worker = build_worker(
            client,
            settings,
            activities=[*activities, *bare_activities()],
            correlation=telemetry_on_,
            workflows=[BareRun],
            workflow_runner=bare_runner(),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_reader(sys.stdin.fileno(), lambda: _answer(stop))
        async with worker:
            print(READY, describe_limits(settings), flush=True)
            await stop.wait()
    if telemetry_on_:
        telemetry.shutdown()


def _answer(stop: asyncio.Event) -> None:
    """A line from the bench: `cpu` asks for this process's CPU seconds (all threads, ns
    resolution, where /proc counts 10 ms ticks); end of input means the bench went away."""
    line = sys.stdin.readline()
    if not line:
        stop.set()
    elif line.strip() == CPU:
        print(f"{time.process_time():.9f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--telemetry", choices=["off", "on"], default="off")
    parser.add_argument("--max-cached", type=int, default=1000)
    args = parser.parse_args()
    settings = bench_settings(args.root, args.task_queue, args.max_cached)
    asyncio.run(serve(args.address, settings, args.telemetry == "on"))
    sys.stdout.flush()
    os._exit(0)  # temporalio's Rust threads can abort a finalising interpreter


if __name__ == "__main__":
    main()
