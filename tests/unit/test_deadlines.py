"""A test that would hang fails at its deadline instead (tests/deadlines.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from opsready.settings import PROJECT_ROOT

# The loop is kept busy by a plain callback, as the Temporal SDK keeps it busy: the case in
# which pytest-timeout's SIGALRM lands in a callback, asyncio swallows it, and the test hangs.
HANGING = """
import asyncio, time
import pytest

def spin(loop):
    end = time.monotonic() + 0.05
    while time.monotonic() < end:
        pass
    loop.call_soon(spin, loop)

@pytest.mark.timeout(6)
async def test_waits_forever():
    loop = asyncio.get_running_loop()
    loop.call_soon(spin, loop)
    await asyncio.Event().wait()

async def test_after_it():
    assert True
"""


def test_a_hanging_async_test_fails_at_its_deadline_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_hang.py").write_text(HANGING)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.deadlines",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "timeout_method=thread",
            "-o",
            "timeout=180",
            str(tmp_path / "test_hang.py"),
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert "deadline of 4.8s passed" in done.stdout, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout, done.stdout
    assert elapsed < 40
