"""Golden histories replay against the current workflow code (the upgrade-safety gate).

A failure here means a change to workflow code would break runs already in flight:
guard it with `workflow.patched` or ship it as a new Worker Deployment Version, then
re-record with `make histories`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workers.app import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_golden_histories_cover_every_demo_path() -> None:
    names = {path.stem for path in HISTORIES}
    assert {
        "agent_run-answered",
        "agent_run-approved",
        "agent_run-rejected",
        "agent_run-halted",
    } <= names


def _read(path: Path) -> str:
    return path.read_text()


@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
async def test_golden_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, _read(path))
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"
