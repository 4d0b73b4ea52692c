"""The kill-switch listener, when the switches cannot be read: it logs that once per episode
and counts a `kill_switch_unknown` safety event, and says when they are readable again."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from activities.flags import FlagClient
from opsready.settings import PROJECT_ROOT, Settings
from opsready.telemetry import Telemetry
from workers.kill_switch import KillSwitchListener


async def until(holds: Callable[[], bool]) -> None:
    """Until the flag client has read the file again (it polls it)."""
    async with asyncio.timeout(5):
        while True:
            if holds():
                return
            await asyncio.sleep(0.02)


def unknown_counts(reader: InMemoryMetricReader) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point.value
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "opsready.safety_events"
        for point in metric.data.data_points
        if dict(point.attributes or {}).get("kind") == "kill_switch_unknown"
    ]


async def test_unreadable_switches_are_logged_once_and_counted(tmp_path: Path) -> None:
    flags_file = tmp_path / "flags.json"
    shutil.copy(PROJECT_ROOT / "temporal-dev" / "flags.json", flags_file)
    settings = Settings(flags_file=flags_file, flags_poll_seconds=0.05)
    flags = FlagClient.from_settings(settings)
    reader = InMemoryMetricReader()
    telemetry = Telemetry.create(span_processors=[], metric_readers=[reader])
    listener = KillSwitchListener(None, settings, flags, agents=[], telemetry=telemetry)  # type: ignore[arg-type]
    try:
        with structlog.testing.capture_logs() as logs:
            await listener.tick()
            good = flags_file.read_text()
            flags_file.write_text(good[: len(good) // 3])  # cut mid-write
            await until(lambda: flags.unavailable() is not None)
            for _ in range(3):
                await listener.tick()
            flags_file.write_text(good)
            await until(lambda: flags.unavailable() is None)
            await listener.tick()
    finally:
        flags.close()
    events = [line["event"] for line in logs if line["log_level"] in ("error", "info")]
    assert events.count("kill switches unknown: new runs and destructive tools are refused") == 1
    assert events[-1] == "kill switches readable again"
    assert unknown_counts(reader) == [1]
