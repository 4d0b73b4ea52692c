"""What every bench shares: a throw-away dev server, bench workers in processes of their own,
CPU time and memory read from /proc, runs driven with bounded concurrency, and the figures
printed as median and spread with the command and the machine's load beside them."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from opsready.connection import connect
from opsready.errors import OpsreadyError
from opsready.settings import Settings
from workers.devserver import dynamic_config_args, local_temporal
from workers.devtools.bench import agent
from workers.devtools.bench.telemetry import quiet_runtime, telemetry_on
from workers.devtools.bench.worker import CPU, READY

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
WORKER_START_TIMEOUT = 120.0


# --- /proc ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (10 ms ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def child_pid(name: str) -> int:
    """The pid of this process's child called `name` (the dev server: `temporal`)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                head, tail = stat.read().rsplit(")", 1)
        except OSError:
            continue
        if int(tail.split()[1]) == me and head.split("(", 1)[1] == name:
            return int(entry)
    raise OpsreadyError(f"no child process {name!r} found")


# --- figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Several measurements of one figure: median and range."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, scale: float = 1.0, digits: int = 1) -> str:
        lo, hi = min(self.values) * scale, max(self.values) * scale
        return f"{self.median * scale:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def command_line() -> str:
    return "opsready " + " ".join(sys.argv[1:]) if sys.argv[1:] else "opsready bench"


def machine() -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"


def server_settings_note() -> str:
    values = [a for a in dynamic_config_args() if a != "--dynamic-config-value"]
    return "dev server started with --dynamic-config-value " + ", ".join(values)


def header(what: str) -> list[str]:
    return [what, f"  command: {command_line()}", f"  machine: {machine()} at start"]


def footer() -> str:
    return f"  machine: {machine()} at the end"


# --- processes ------------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """A bench worker in its own process (workers/devtools/bench/worker.py)."""

    process: asyncio.subprocess.Process
    task_queue: str
    slots: str  # its slot settings, as it printed them

    @property
    def pid(self) -> int:
        return self.process.pid

    async def cpu(self) -> float:
        """The worker's CPU seconds so far, all threads, as it measures them itself."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{CPU}\n".encode())
        await self.process.stdin.drain()
        return float((await self.process.stdout.readline()).decode())

    def rss(self) -> int:
        return rss_bytes(self.pid)


@asynccontextmanager
async def worker_process(
    address: str, root: Path, *, telemetry: bool = False, max_cached: int = 1000
) -> AsyncIterator[WorkerProcess]:
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workers.devtools.bench.worker",
        "--address",
        address,
        "--task-queue",
        queue,
        "--root",
        str(root),
        "--telemetry",
        "on" if telemetry else "off",
        "--max-cached",
        str(max_cached),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WORKER_START_TIMEOUT):
            line = await process.stdout.readline()
        word, _, slots = line.decode().strip().partition(" ")
        if word != READY:
            raise OpsreadyError(f"the bench worker did not start (exit {await process.wait()})")
        yield WorkerProcess(process, queue, slots)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


@dataclass
class Bench:
    """A dev server, a scratch dir with the bench agent, and clients of it."""

    address: str
    root: Path
    server_pid: int
    client: Client
    traced: Client  # starts traces, as a starter with telemetry on does
    workers: dict[str, WorkerProcess] = field(default_factory=dict)

    def server_cpu(self) -> float:
        return cpu_seconds(self.server_pid)

    def settings(self, worker: WorkerProcess) -> Settings:
        return Settings(
            agents_dir=self.root / "agents", task_queue=worker.task_queue, worker_versioning=False
        )


@asynccontextmanager
async def bench_server(root: Path) -> AsyncIterator[Bench]:
    """A throw-away dev server (free port, in memory, temporal-dev/'s dynamic config) and
    the bench agent's definition under `root`."""
    agent.write_agents_dir(root)
    settings = Settings(data_dir=root / "data", worker_versioning=False)
    async with local_temporal(settings) as server:
        runtime = quiet_runtime()
        client = await connect(server.address, runtime=runtime)
        traced = await connect(server.address, telemetry=telemetry_on(), runtime=runtime)
        yield Bench(server.address, root, child_pid("temporal"), client, traced)


async def run_all(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Run `one(i)` for i in range(n), at most `concurrency` at once; the wall seconds."""
    gate = asyncio.Semaphore(concurrency)

    async def guarded(i: int) -> None:
        async with gate:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(guarded(i) for i in range(n)))
    return time.perf_counter() - started


async def until(
    probe: Callable[[], Awaitable[bool]], *, timeout: float = 30, every: float = 0.05
) -> None:
    """Poll `probe` until it holds (TimeoutError after `timeout`)."""
    async with asyncio.timeout(timeout):
        while True:
            if await probe():
                return
            await asyncio.sleep(every)
