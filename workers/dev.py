"""`opsready dev` / `make dev`: the local Temporal dev server with its UI, plus a worker,
in the foreground until Ctrl-C. Data persists in `.temporal/dev.sqlite` between runs."""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack, suppress

from opsready.client import OpsreadyClient
from opsready.errors import OpsreadyError
from opsready.settings import Settings
from opsready.slo.schedule import monitor_state
from opsready.telemetry import export_summary
from opsready.ui_links import operator_views
from workers.devserver import DEV_PORT, dev_server, is_port_open
from workers.main import run_worker
from workers.versioning import versioning_summary
from workflows.slo_monitor_types import DEFAULT_EVERY_SECONDS


def run_dev(settings: Settings) -> int:
    with suppress(KeyboardInterrupt):
        asyncio.run(_dev(settings))
    return 0


async def _dev(settings: Settings) -> None:
    address = os.environ.get("TEMPORAL_ADDRESS")
    if address is None and is_port_open(DEV_PORT):
        address = f"127.0.0.1:{DEV_PORT}"
        print(f"A Temporal server already listens on :{DEV_PORT}; using it.")
    async with AsyncExitStack() as stack:
        started = address is None
        if address is None:
            print("Starting the Temporal dev server (data in .temporal/dev.sqlite)...")
            address = (await stack.enter_async_context(dev_server(settings))).address
        monitor = await _monitor_line(settings, address)
        _print_banner(settings, address, monitor, started=started)
        # On a server of its own, dev's worker is the deployment's only one: its version
        # becomes current even over the build the persistent database remembers.
        await run_worker(settings, address=address, take_over=started)
    if started:
        print("Stopped the Temporal dev server.")


async def _monitor_line(settings: Settings, address: str) -> str:
    """Where the SLO monitor's Schedule stands. `opsready dev` does not start it: on a dev
    server that keeps the demo's rehearsal runs (failures, kill switches, halts on purpose),
    its first pass would open incidents whose runbooks kill and pause the agent."""
    try:
        client = await OpsreadyClient.connect(settings, address=address)
        state = await monitor_state(client.temporal)
    except OpsreadyError as err:
        return f"unknown ({err})"
    if not state.exists:
        return "not started (opsready slo monitor start: a pass every minute)"
    if state.paused:
        return f"paused ({state.note or 'no reason given'}; opsready slo monitor start)"
    return f"a pass every {state.every_seconds or DEFAULT_EVERY_SECONDS:g} s"


def _print_banner(settings: Settings, address: str, monitor: str, *, started: bool) -> None:
    print(
        f"\nTemporal:     {address} (namespace default)\n"
        f"Temporal UI:  {settings.ui_url}/namespaces/default/workflows\n"
        f"Task queue:   {settings.task_queue}\n"
        f"Deployment:   {versioning_summary(settings)}\n"
        f"Flags:        {_flags_source(settings)} (opsready flags list; kill switches: "
        "opsready flags kill --agent NAME)\n"
        f"Telemetry:    {export_summary().removeprefix('telemetry: ')}\n"
        "Logs:         this terminal (OPSREADY_LOG_FORMAT=json|console)\n"
        f"SLO monitor:  {monitor}; incidents: opsready incident list\n"
        f"{_views(settings.ui_url)}"
        "Try:          opsready run support-triage "
        "'My headphones from order A-1002 arrived broken, refund please' --user customer-17\n"
        "              opsready list --status awaiting_approval\n"
        "              opsready approve RUN --as alice\n"
        "              opsready deploy status\n"
        "Ctrl-C stops the worker" + (" and the server.\n" if started else ".\n")
    )


def _views(ui_url: str) -> str:
    """Ready-made lists for the UI (its list shows no Agent* column until you add them:
    README, "The Temporal UI")."""
    lines = [f"  {label + ':':<33}{url}" for label, url in operator_views(ui_url)]
    return "UI lists:\n" + "\n".join(lines) + "\n"


def _flags_source(settings: Settings) -> str:
    if settings.launchdarkly_sdk_key is not None:
        return f"LaunchDarkly ({settings.launchdarkly_base_uri or 'launchdarkly.com'})"
    copy = " (a working copy of temporal-dev/flags.json)" if settings.is_default_flags_file else ""
    return f"file {settings.flags_file}{copy}, re-read every {settings.flags_poll_seconds:g} s"
