"""`opsready bench kill-switch`: how long a kill switch takes to stop every open run.

One throw-away dev server, one worker with its kill-switch listener, a temporary copy of the
flag file. Each round opens N runs (half parked on a refund approval, half inside a tool that
runs until cancelled), turns the global kill switch on in the file, and times the flip until
the last run shows `AgentStatus='halted'` (and until the last one has closed). As a
reference, the same round is timed with this client sending `halt` to every run itself: the
ratio says what the flag file, the listener and its halt path cost on top of bare signals.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from activities.flags import FlagClient, evaluation_context
from activities.models.local import LocalProvider, support_triage
from activities.tools.registry import Tool, ToolContext
from activities.tools.support import support_tools
from opsready.client import OpsreadyClient
from opsready.console import advance, progress
from opsready.flags import LocalFlagFile
from opsready.settings import PROJECT_ROOT, SHIPPED_FLAGS_FILE, Settings
from workers.devtools.bench.rig import until
from workflows import contract
from workflows.contract import KILL_SWITCH, Signal
from workflows.payloads import ChatMessage, ModelCallInput, ToolCallRequest
from workflows.types import HaltRequest, RiskTier

HaltPath = Literal["auto", "direct", "batch"]
APPROVAL = "My headphones from order A-1002 arrived broken, I want a refund."
SLOW_AGENT = "bench-slow"
SLOW_TOOL = "slow_task"
SLOW_AGENT_TOML = f"""
name = "{SLOW_AGENT}"
version = "1.0.0"
description = "Benchmark only: calls a tool that runs until it is cancelled."
model = "local/{SLOW_AGENT}"
prompt_version = "v1"

[prompts.v1]
system = "Call {SLOW_TOOL}, then say that it is done."

[tools.{SLOW_TOOL}]
timeout_seconds = 3600
"""
STOP_TIMEOUT = 30.0  # a round's runs not halted by then are reported, not waited for


class SlowTaskArgs(BaseModel):
    label: str


@dataclass
class SlowTool:
    """A tool that never finishes on its own (the tool activity heartbeats meanwhile)."""

    started: set[str] = field(default_factory=set)

    async def run(self, args: SlowTaskArgs, ctx: ToolContext) -> dict[str, str]:
        self.started.add(ctx.run_id)
        await asyncio.Event().wait()  # until the halt's cancellation arrives
        return {"done": args.label}

    def tool(self) -> Tool:
        return Tool(SLOW_TOOL, "Runs until cancelled.", SlowTaskArgs, RiskTier.READ, self.run)


def slow_script(request: ModelCallInput) -> ChatMessage:
    if any(m.role == "tool" for m in request.messages):
        return ChatMessage(role="assistant", content="done")
    call = ToolCallRequest(id="call_1", name=SLOW_TOOL, arguments={"label": "bench"})
    return ChatMessage(role="assistant", tool_calls=[call])


@dataclass
class Stopped:
    """One round: seconds until every run showed halted / had closed (inf: not all did)."""

    halted: float
    closed: float
    not_halted: int = 0


@dataclass
class Rig:
    client: Client
    runs: OpsreadyClient
    flags: FlagClient
    store: LocalFlagFile
    slow: SlowTool
    switches_on: Callable[[], set[str]]

    async def count(self, query: str) -> int:
        return (await self.client.count_workflows(query)).count

    async def open_runs(self, n: int) -> tuple[str, list[str]]:
        """Start n runs under a fresh tenant tag and wait until every one is parked: half
        inside the slow tool, half waiting on an approval with nothing else in flight."""
        tag = f"b{uuid.uuid4().hex[:8]}"
        in_tool = n // 2
        agents = [SLOW_AGENT if i < in_tool else "support-triage" for i in range(n)]
        ids = list(
            await asyncio.gather(*(self.runs.start_run(a, APPROVAL, tenant_id=tag) for a in agents))
        )
        waiting: set[str] = set(ids)

        async def all_parked() -> bool:
            ordered = list(waiting)
            checks = await asyncio.gather(*(self._is_parked(run_id) for run_id in ordered))
            waiting.difference_update(r for r, ok in zip(ordered, checks, strict=True) if ok)
            return not waiting

        await until(all_parked, timeout=180, every=0.2)
        await until(lambda: self._has(f"AgentTenant='{tag}' AND ExecutionStatus='Running'", n))
        return tag, ids

    async def _is_parked(self, run_id: str) -> bool:
        if run_id.startswith(SLOW_AGENT):
            return run_id in self.slow.started
        # Parked = waiting on the approval itself: no activity and no workflow task pending
        # (a halt that lands with an activity's result is lost; see the report's caveat).
        description = await self.client.get_workflow_handle(run_id).describe()
        raw = description.raw_description
        return (
            description.typed_search_attributes.get(contract.AGENT_STATUS) == "awaiting_approval"
            and not raw.pending_activities
            and not raw.HasField("pending_workflow_task")
        )

    async def _has(self, query: str, n: int) -> bool:
        return await self.count(query) == n

    async def stopped(self, tag: str, n: int, started: float) -> Stopped:
        halted = f"AgentTenant='{tag}' AND AgentStatus='halted'"
        try:
            await until(lambda: self._has(halted, n), timeout=STOP_TIMEOUT, every=0.02)
        except TimeoutError:
            return Stopped(math.inf, math.inf, n - await self.count(halted))
        t_halted = time.perf_counter() - started
        running = f"AgentTenant='{tag}' AND ExecutionStatus='Running'"
        try:
            await until(lambda: self._has(running, 0), timeout=STOP_TIMEOUT, every=0.02)
        except TimeoutError:
            return Stopped(t_halted, math.inf)
        return Stopped(t_halted, time.perf_counter() - started)

    async def flag_round(self, n: int) -> Stopped:
        tag, _ = await self.open_runs(n)
        started = time.perf_counter()
        await self.store.kill()
        result = await self.stopped(tag, n, started)
        await self.store.unkill()
        await until(self._is_off, timeout=10)
        return result

    async def _is_off(self) -> bool:
        value = self.flags.evaluate(KILL_SWITCH, evaluation_context("*"), False).value
        return value is False and KILL_SWITCH not in self.switches_on()

    async def bare_round(self, n: int) -> Stopped:
        tag, ids = await self.open_runs(n)
        halt = HaltRequest(reason="bench: bare signal", by="bench")
        started = time.perf_counter()
        await asyncio.gather(
            *(self.client.get_workflow_handle(i).signal(Signal.HALT, halt) for i in ids)
        )
        return await self.stopped(tag, n, started)


def _agents_dir(root: Path) -> Path:
    agents = root / "agents"
    agents.mkdir()
    shutil.copy(PROJECT_ROOT / "agents" / "support-triage.toml", agents)
    pricing = (PROJECT_ROOT / "agents" / "pricing.toml").read_text()
    (agents / "pricing.toml").write_text(
        pricing + f'\n[models."local/{SLOW_AGENT}"]\ninput_per_million_usd = 0.15\n'
        "output_per_million_usd = 0.60\n"
    )
    (agents / f"{SLOW_AGENT}.toml").write_text(SLOW_AGENT_TOML)
    return agents


def direct_limit(path: HaltPath) -> int:
    from workers.kill_switch import DIRECT_LIMIT

    return {"auto": DIRECT_LIMIT, "direct": 1_000_000, "batch": 0}[path]


async def _bench(runs: int, rounds: int, path: HaltPath) -> dict[str, list[Stopped]]:
    from opsready.connection import connect
    from workers.app import build_activities, build_worker
    from workers.devserver import local_temporal
    from workers.kill_switch import KillSwitchListener

    results: dict[str, list[Stopped]] = {"flip": [], "bare": []}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        flags_file = root / "flags.json"
        shutil.copy(SHIPPED_FLAGS_FILE, flags_file)
        settings = Settings(
            data_dir=root / "data",
            agents_dir=_agents_dir(root),
            flags_file=flags_file,
            task_queue=f"bench-{uuid.uuid4().hex[:6]}",
            worker_versioning=False,  # the bench measures halting, not routing
            max_concurrent_activities=max(1000, 4 * runs),
        )
        slow = SlowTool()
        tools = [*support_tools(PROJECT_ROOT / "agents" / "data" / "support-triage"), slow.tool()]
        provider = LocalProvider({"support-triage": support_triage, SLOW_AGENT: slow_script})
        flags = FlagClient.from_settings(settings)
        try:
            async with local_temporal(settings) as server:
                # The SDK core's own warnings (slow workflow tasks under this load, tool
                # results arriving after their run was halted) would bury the report.
                quiet = LoggingConfig(
                    filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")
                )
                client = await connect(
                    server.address, runtime=Runtime(telemetry=TelemetryConfig(logging=quiet))
                )
                activities = build_activities(
                    settings, providers={"local": provider}, tools=tools, flags=flags
                )
                listener = KillSwitchListener(
                    client, settings, flags, direct_limit=direct_limit(path)
                )
                async with build_worker(client, settings, activities=activities), listener:
                    rig = Rig(
                        client,
                        OpsreadyClient(client, settings),
                        flags,
                        LocalFlagFile(flags_file),
                        slow,
                        listener.switches_on,
                    )
                    with progress() as bar:
                        task = bar.add_task("warm-up", total=1 + 2 * rounds)
                        await rig.flag_round(min(runs, 10))  # warm-up: caches, connections
                        await rig.bare_round(min(runs, 10))
                        for r in range(1, rounds + 1):
                            advance(bar, task, f"round {r}/{rounds}: flag flip, {runs} runs")
                            results["flip"].append(await rig.flag_round(runs))
                            advance(bar, task, f"round {r}/{rounds}: bare signals, {runs} runs")
                            results["bare"].append(await rig.bare_round(runs))
                        advance(bar, task)
        finally:
            flags.close()
    return results


def _seconds(values: list[float]) -> str:
    each = ", ".join(f"{v:.2f}" for v in values)
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s  ({each})"


def report(runs: int, rounds: int, path: HaltPath, results: dict[str, list[Stopped]]) -> str:
    from workers.kill_switch import DIRECT_LIMIT

    how = {
        "auto": f"direct signals up to {DIRECT_LIMIT} runs, one batch operation above",
        "direct": "direct signals",
        "batch": "one batch operation",
    }[path]
    flip, bare = results["flip"], results["bare"]
    lines = [
        f"kill switch: {runs} open runs per round ({runs // 2} inside a tool, "
        f"{runs - runs // 2} awaiting approval), {rounds} rounds after a warm-up; "
        f"halt path: {path} ({how})",
        f"  flag flip -> all halted:        {_seconds([s.halted for s in flip])}",
        f"  flag flip -> all closed:        {_seconds([s.closed for s in flip])}",
        f"  bare halt signals -> halted:    {_seconds([s.halted for s in bare])}",
        f"  bare halt signals -> closed:    {_seconds([s.closed for s in bare])}",
    ]
    ratios = [f.halted / b.halted for f, b in zip(flip, bare, strict=True)]
    lines.append(
        f"  ratio flag flip / bare signals (halted): median {statistics.median(ratios):.2f}, "
        f"max {max(ratios):.2f}"
    )
    missing = [(name, s.not_halted) for name in ("flip", "bare") for s in results[name]]
    for name, count in missing:
        if count:
            lines.append(f"  {name}: {count} runs not halted within {STOP_TIMEOUT:g} s")
    worst = max(s.halted for s in flip)
    verdict = "met" if worst <= 2.0 else "NOT met"
    lines.append(
        f"  target: every run halted within 2 s of the flip: {verdict} (max {worst:.2f} s)"
    )
    return "\n".join(lines)


def run_bench(runs: int = 100, rounds: int = 3, path: HaltPath = "auto") -> int:
    from opsready.logs import configure_logging

    # Quiet, except for the listener's own lines (what it halted, how, how fast).
    configure_logging(level="ERROR")
    logging.getLogger("opsready.kill_switch").setLevel(logging.WARNING)
    results = asyncio.run(_bench(runs, rounds, path))
    print(report(runs, rounds, path, results))
    return 0 if max(s.halted for s in results["flip"]) <= 2.0 else 1
