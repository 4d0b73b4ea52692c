"""`opsready demo`: the support-triage agent through its four paths, end to end.

Starts the local Temporal dev server (unless one already listens on :7233) and a worker,
then runs: a message answered on its own; a refund over the threshold approved through
the `opsready` CLI; one rejected; one halted while it waits. Then flags: a run with a
shadow twin trying prompt v2, and the agent's kill switch flipped while a run waits (the
worker's listener halts it; the next run is refused). Then an incident: the `model` flag
switches the agent to `local/broken`, its runs fail, an incident opens and its runbook
stops refunds and switches to the fallback model, an operator resolves it (MTTD, MTTR).
Prints what happened and where to look in the Temporal UI, then stops what it started. The
demo's flags live in its own copy of the shipped defaults (`.opsready/demo-flags.json`), so
neither the shipped file nor the operator's working copy (`.opsready/flags.json`) is
changed, and earlier flips there cannot change how the demo ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from opsready.client import OpsreadyClient
from opsready.console import waiting
from opsready.errors import OpsreadyError
from opsready.flags import write_atomically
from opsready.logs import configure_logging
from opsready.settings import SHIPPED_FLAGS_FILE, Settings
from opsready.ui_links import operator_views, run_url
from workers.devtools.demo_incident import check as check_incident
from workers.devtools.demo_incident import print_incident, run_incident_scenario
from workflows.types import AgentRunResult, RunStatus

if TYPE_CHECKING:
    from activities.flags import FlagClient

AGENT = "support-triage"

# (name, customer message, action once it waits for approval)
SCENARIOS: list[tuple[str, str, str | None]] = [
    ("answered", "Where is my order A-1003? It was due days ago and it is late.", None),
    ("approved", "My headphones from order A-1002 arrived broken, I want a refund.", "approve"),
    ("rejected", "My office chair from order A-1004 arrived broken, refund me $240.", "reject"),
    ("halted", "Order A-1002 arrived broken, I want my money back, refund $129.", "halt"),
]

# How a waiting run is acted on: (action, run id, address) -> None.
Actor = Callable[[str, str, str], Awaitable[None]]


@dataclass
class ScenarioRun:
    name: str
    run_id: str
    action: str | None
    result: AgentRunResult


async def opsready(address: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the real `opsready` CLI, as an operator would; its output."""
    command = [sys.executable, "-m", "starters.cli", "--address", address, *args]
    print(f"    $ opsready {shlex.join(args)}")
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        raise OpsreadyError(f"`opsready {args[0]}` failed: {done.stderr.strip()}")
    return done.stdout


async def cli_actor(action: str, run_id: str, address: str) -> None:
    args = {
        "approve": ["approve", run_id, "--as", "alice", "--comment", "damaged in transit"],
        "reject": ["reject", run_id, "--as", "bob", "--comment", "over the auto-refund limit"],
        "halt": ["halt", run_id, "--reason", "demo: stop this run", "--by", "oncall"],
    }[action]
    await opsready(address, *args)


async def run_scenarios(
    client: OpsreadyClient, address: str, actor: Actor = cli_actor, prefix: str = "demo"
) -> list[ScenarioRun]:
    runs = []
    for name, text, action in SCENARIOS:
        request_id = f"{prefix}-{name}-{uuid.uuid4().hex[:6]}"
        run_id = await client.start_run(
            AGENT, text, user_id="customer-17", tenant_id="acme", request_id=request_id
        )
        print(f"  {name:<9} {run_id}: {text}")
        if action is not None:
            with waiting(f"{name}: running until it asks for an approval"):
                state = await _wait_until_awaiting(client, run_id)
            pending = state.pending_approvals[0]
            print(f"    waiting for approval: {pending.reason}")
            await actor(action, run_id, address)
        with waiting(f"{name}: running"):
            result = await client.result(run_id)
        print(f"    -> {result.status.value}: {result.reason}")
        runs.append(ScenarioRun(name, run_id, action, result))
    return runs


async def run_flag_scenarios(
    client: OpsreadyClient, address: str, flags: FlagClient, flags_file: Path, prefix: str = "demo"
) -> list[ScenarioRun]:
    """A shadow twin, then the agent's kill switch, both flipped through `opsready flags`."""
    env = {"OPSREADY_FLAGS_FILE": str(flags_file)}
    runs = []

    async def start(name: str, text: str) -> str:
        run_id = await client.start_run(
            AGENT,
            text,
            user_id="customer-17",
            tenant_id="acme",
            request_id=f"{prefix}-{name}-{uuid.uuid4().hex[:6]}",
        )
        print(f"  {name:<9} {run_id}: {text}")
        return run_id

    candidate = '{"prompt_version": "v2", "sample_rate": 1}'
    await opsready(address, "flags", "set", "shadow", candidate, env=env)
    await _until_worker_sees(flags, "shadow", json.loads(candidate))
    run_id = await start("shadowed", SCENARIOS[0][1])
    with waiting("shadowed: running, then its shadow twin"):
        result = await client.result(run_id)
    print(f"    -> {result.status.value}; shadow twin {result.shadow_run_id}")
    if result.shadow_run_id:
        twin = await client.result(result.shadow_run_id)
        if twin.shadow_comparison is not None:
            c = twin.shadow_comparison
            print(
                f"    twin (prompt v2, write tools simulated): same tool plan {c.same_tool_plan}, "
                f"same outcome {c.same_status}, answer overlap {c.output_similarity:.2f}"
            )
    await opsready(address, "flags", "set", "shadow", "{}", env=env)
    runs.append(ScenarioRun("shadowed", run_id, None, result))

    run_id = await start("killed", SCENARIOS[1][1])
    with waiting("killed: running until it asks for an approval"):
        pending = (await _wait_until_awaiting(client, run_id)).pending_approvals[0]
    print(f"    waiting for approval: {pending.reason}")
    await opsready(address, "flags", "kill", "--agent", AGENT, "--reason", "demo", env=env)
    with waiting("killed: the worker's listener halts it"):
        result = await client.result(run_id)
    print(f"    -> {result.status.value}: {result.reason}")
    runs.append(ScenarioRun("killed", run_id, "kill", result))
    run_id = await start("refused", SCENARIOS[0][1])
    result = await client.result(run_id)
    print(f"    -> {result.status.value}: {result.reason}")
    runs.append(ScenarioRun("refused", run_id, None, result))
    await opsready(address, "flags", "unkill", "--agent", AGENT, env=env)
    return runs


async def _until_worker_sees(flags: FlagClient, key: str, value: object) -> None:
    """The worker re-reads the flag file every 0.2 s: wait until it has the new value."""
    from activities.flags import evaluation_context

    context = evaluation_context(AGENT)
    async with asyncio.timeout(10):
        while True:
            if flags.evaluate(key, context, None).value == value:
                return
            await asyncio.sleep(0.05)


async def _wait_until_awaiting(client: OpsreadyClient, run_id: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = await client.state(run_id)
        if state.status is RunStatus.AWAITING_APPROVAL:
            return state
        if state.status.is_terminal or loop.time() > deadline:
            raise OpsreadyError(f"{run_id} did not wait for approval (status {state.status})")
        await asyncio.sleep(0.1)


def print_summary(runs: list[ScenarioRun], ui_url: str, flags_file: Path | None = None) -> None:
    print("\nSummary")
    print(f"  {'scenario':<9} {'status':<17} {'steps':>5} {'tokens':>7} {'cost $':>9}  approval")
    for run in runs:
        r = run.result
        approval = ", ".join(f"{a.outcome} by {a.approver or '-'}" for a in r.approvals) or "-"
        print(
            f"  {run.name:<9} {r.status.value:<17} {r.steps:>5} "
            f"{r.usage.input_tokens + r.usage.output_tokens:>7} {r.usage.cost_usd:>9.6f}  {approval}"
        )
    print("\nWhere to look")
    print(f"  Temporal UI: {ui_url}/namespaces/default/workflows")
    print("    each run: User Metadata (summary, current details), the history of model and")
    print("    tool activities (named in their summaries), the approval signal/update, the memo")
    for label, url in operator_views(ui_url):
        print(f"    {label}: {url}")
    example = runs[1].run_id if len(runs) > 1 else runs[0].run_id
    print(f"  One run:     {run_url(ui_url, example)}")
    print("  CLI:         opsready list --agent support-triage")
    print(f"               opsready status {example}")
    print("  Temporal:    temporal workflow list --query \"AgentStatus='halted'\"")
    copy = shlex.quote(str(flags_file)) if flags_file else "..."
    print(f"  Flags:       OPSREADY_FLAGS_FILE={copy} opsready flags list   (the demo's copy)")
    print("               opsready shadow report support-triage")
    print("  Versions:    opsready deploy status")


def run_demo(settings: Settings, *, keep_running: bool = False) -> int:
    log_file = settings.data_dir / "demo.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as log:
        # The story goes to the terminal; the worker's JSON logs go to a file.
        configure_logging(fmt="json", stream=log)
        print(f"Worker logs (JSON lines): {log_file}")
        return asyncio.run(_demo(settings, keep_running=keep_running))


async def _demo(settings: Settings, *, keep_running: bool) -> int:
    from workers.devserver import DEV_PORT, dev_server, is_port_open

    async with AsyncExitStack() as stack:
        address = os.environ.get("TEMPORAL_ADDRESS") or f"127.0.0.1:{DEV_PORT}"
        ui_url = settings.ui_url
        started = not (is_port_open(DEV_PORT) or os.environ.get("TEMPORAL_ADDRESS"))
        if not started:
            print(f"Using the Temporal server at {address}")
        else:
            print("Starting the Temporal dev server (UI on :8233, data in .temporal/dev.sqlite)")
            server = await stack.enter_async_context(dev_server(settings))
            address, ui_url = server.address, server.ui_url or ui_url
        code = await _demo_on(settings, address, ui_url, started=started, keep_running=keep_running)
    if started:
        print("Stopped the Temporal dev server (its data stays in .temporal/)")
    return code


async def _demo_on(
    settings: Settings, address: str, ui_url: str, *, started: bool, keep_running: bool
) -> int:
    """The demo against the server at `address` (`started`: one this process started)."""
    from activities.flags import FlagClient
    from workers.app import build_activities, build_worker
    from workers.kill_switch import KillSwitchListener
    from workers.versioning import (
        build_id,
        ensure_current_version,
        take_over_current_version,
        versioning_summary,
    )

    flags_file = settings.data_dir / "demo-flags.json"
    write_atomically(flags_file, SHIPPED_FLAGS_FILE.read_text())  # never half a file
    settings = settings.model_copy(update={"flags_file": flags_file})
    flags = FlagClient.from_settings(settings)
    try:
        client = await OpsreadyClient.connect(settings, address=address)
        activities = build_activities(settings, namespace=client.temporal.namespace, flags=flags)
        listener = KillSwitchListener(
            client.temporal, settings, flags, task_queue=settings.task_queue
        )
        async with build_worker(client.temporal, settings, activities=activities), listener:
            print(f"Worker polling task queue {settings.task_queue}")
            print(f"Deployment: {versioning_summary(settings)}")
            # Versioned like `make dev`: on a server of its own the demo's worker is the only
            # one, so its build becomes current; on a shared server only a first deploy does.
            route = take_over_current_version if started else ensure_current_version
            change = await route(client.temporal, settings)
            if change is not None:
                made = " (made current)" if change.after != change.before else ""
                print(f"New runs go to build {change.after.current}{made}")
                if change.after.current != build_id(settings):
                    print(
                        "  (another build's worker must be running; to use this one: "
                        f"opsready deploy set-current {build_id(settings)})"
                    )
            print()
            print(f"Running the {AGENT} agent:")
            runs = await run_scenarios(client, address)
            print(f"\nFlags ({flags_file}):")
            runs += await run_flag_scenarios(client, address, flags, flags_file)
            print("\nIncident (the model breaks on purpose):")
            incident = await run_incident_scenario(
                client,
                settings,
                address,
                opsready,
                lambda key, value: _until_worker_sees(flags, key, value),
            )
            (broken, broken_result), (recovered, recovered_result) = (
                incident.failed[0],
                incident.recovered,
            )
            runs.append(ScenarioRun("broken", broken, None, broken_result))
            runs.append(ScenarioRun("recovered", recovered, None, recovered_result))
            print_summary(runs, ui_url, flags_file)
            print_incident(incident, ui_url)
            if started and (keep_running or sys.stdin.isatty()):
                print("\nThe server and worker keep running so you can explore; Enter stops them.")
                await asyncio.to_thread(sys.stdin.readline)
        expected = ["completed", "completed", "rejected", "halted", "completed", "halted", "halted"]
        expected += ["failed", "completed"]
        problem = check_incident(incident)
        if [r.result.status.value for r in runs] != expected:
            problem = f"expected {expected}"
        print("\nDemo " + ("passed" if problem is None else f"FAILED: {problem}"))
        return 0 if problem is None else 1
    finally:
        flags.close()
