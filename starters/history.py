"""`opsready history record`: capture golden histories of the demo scenarios.

Starts a throw-away dev server (free port, in-memory) and a worker, runs every scenario,
and writes each run's history as JSON into `tests/histories/`, where the replay test
checks that the current workflow code still replays them.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from opsready.logs import configure_logging
from opsready.settings import Settings
from starters.client import OpsreadyClient
from starters.demo import Actor, run_scenarios


def client_actor(client: OpsreadyClient) -> Actor:
    async def act(action: str, run_id: str, address: str) -> None:
        if action == "approve":
            await client.approve(run_id, "alice", comment="damaged in transit")
        elif action == "reject":
            await client.reject(run_id, "bob", comment="over the auto-refund limit")
        else:
            await client.halt(run_id, reason="golden: stop this run", by="oncall")

    return act


def record(settings: Settings, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(level="ERROR")  # the scenario story is the output
    return asyncio.run(_record(settings, out_dir))


async def _record(settings: Settings, out_dir: Path) -> list[Path]:
    from workers.app import build_worker
    from workers.devserver import DevServer, free_port

    with tempfile.TemporaryDirectory() as scratch:
        settings = settings.model_copy(update={"data_dir": Path(scratch)})
        with DevServer(settings, port=free_port(), headless=True) as server:
            client = await OpsreadyClient.connect(settings, address=server.address)
            async with build_worker(client.temporal, settings):
                runs = await run_scenarios(
                    client, server.address, actor=client_actor(client), prefix="golden"
                )
            written = []
            for run in runs:
                handle = client.temporal.get_workflow_handle(run.run_id)
                history = await handle.fetch_history()
                path = out_dir / f"agent_run-{run.name}.json"
                path.write_text(history.to_json())
                written.append(path)
                print(f"wrote {path} ({run.result.status.value})")
    return written
