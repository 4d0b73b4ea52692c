"""`opsready worker` as a separate process, configured by environment variables as an
operator would: for tests that kill a worker mid-way or need two worker processes.

    async with worker_process(address, {"OPSREADY_TASK_QUEUE": q, ...}) as process: ...
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from opsready.settings import PROJECT_ROOT

READY = b"worker started"


@asynccontextmanager
async def worker_process(
    address: str, env: Mapping[str, str], timeout: float = 60.0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start `opsready worker` against `address`; yield once it polls; kill it at the end
    (if the test has not already)."""
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPSREADY_", "OTEL_"))},
        "PYTHONPATH": str(PROJECT_ROOT),
        "OPSREADY_LOG_FORMAT": "json",
        "OPSREADY_WORKER_VERSIONING": "false",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starters.cli",
        "--address",
        address,
        "worker",
        cwd=PROJECT_ROOT,
        env=environ,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(timeout):
            while READY not in (line := await process.stderr.readline()):
                if not line:
                    raise AssertionError(
                        f"the worker exited before it started ({process.returncode})"
                    )
        drain = asyncio.create_task(_drain(process.stderr))  # a full pipe would block it
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        if drain is not None:
            drain.cancel()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
