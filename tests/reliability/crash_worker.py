"""A real worker process for the crash test: the support-triage agent with its real tools,
except that `refund_order` can be told to hang after the refund was made (while the file
`--hang-file` exists), so the test can SIGKILL the worker between the side effect and the
activity's completion, the worst moment for exactly-once.

    python -m tests.reliability.crash_worker --address HOST:PORT --task-queue Q \
        --data-dir D --hang-file H --reached-file R
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.models.local import LocalProvider
from activities.tools.registry import Tool, ToolContext
from activities.tools.support import support_tools
from opsready.settings import PROJECT_ROOT, Settings
from workers.app import build_activities, build_worker

TOOL_TIMEOUT_SECONDS = 3.0  # also the heartbeat timeout: a dead worker is noticed this fast
STICKY_TIMEOUT_SECONDS = 1.0


def hanging_after_effect(tool: Tool, hang_file: Path, reached_file: Path) -> Tool:
    async def fn(args: Any, ctx: ToolContext) -> Any:
        output = await tool.fn(args, ctx)  # the side effect happens here
        with reached_file.open("a") as attempts:
            attempts.write(ctx.idempotency_key + "\n")
        if await asyncio.to_thread(hang_file.exists):
            await asyncio.Event().wait()  # heartbeats go on; the test kills the worker here
        return output

    return dataclasses.replace(tool, fn=fn, timeout_seconds=TOOL_TIMEOUT_SECONDS)


async def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--address", "--task-queue", "--data-dir", "--hang-file", "--reached-file"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    settings = Settings(
        task_queue=args.task_queue, data_dir=Path(args.data_dir), worker_versioning=False
    )
    tools = [
        hanging_after_effect(tool, Path(args.hang_file), Path(args.reached_file))
        if tool.name == "refund_order"
        else tool
        for tool in support_tools(PROJECT_ROOT / "agents" / "data" / "support-triage")
    ]
    client = await Client.connect(args.address, data_converter=pydantic_data_converter)
    activities = build_activities(settings, providers={"local": LocalProvider()}, tools=tools)
    # A killed worker never says goodbye, so the run's next workflow task waits on its
    # sticky queue until this timeout (10 s by default) before any worker may take it.
    sticky = timedelta(seconds=STICKY_TIMEOUT_SECONDS)
    worker = build_worker(
        client, settings, activities=activities, sticky_queue_schedule_to_start_timeout=sticky
    )
    async with worker:
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
