"""`opsready dev` / `make dev`: the local Temporal dev server with its UI, plus a worker,
in the foreground until Ctrl-C. Data persists in `.temporal/dev.sqlite` between runs."""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack, suppress

from opsready.settings import Settings
from opsready.telemetry import export_summary
from opsready.ui_links import operator_views
from workers.devserver import DEV_PORT, dev_server, is_port_open
from workers.main import run_worker
from workers.versioning import versioning_summary


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
        _print_banner(settings, address, started=started)
        # On a server of its own, dev's worker is the deployment's only one: its version
        # becomes current even over the build the persistent database remembers.
        await run_worker(settings, address=address, take_over=started)
    if started:
        print("Stopped the Temporal dev server.")


def _print_banner(settings: Settings, address: str, *, started: bool) -> None:
    print(
        f"\nTemporal:     {address} (namespace default)\n"
        f"Temporal UI:  {settings.ui_url}/namespaces/default/workflows\n"
        f"Task queue:   {settings.task_queue}\n"
        f"Deployment:   {versioning_summary(settings)}\n"
        f"Flags:        {_flags_source(settings)} (opsready flags list; kill switches: "
        "opsready flags kill --agent NAME)\n"
        f"Telemetry:    {export_summary().removeprefix('telemetry: ')}\n"
        "Logs:         this terminal (OPSREADY_LOG_FORMAT=json|console)\n"
        f"{_views(settings.ui_url)}"
        "Try:          opsready run support-triage "
        "'My headphones from order A-1002 arrived broken, refund please' --user me\n"
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
