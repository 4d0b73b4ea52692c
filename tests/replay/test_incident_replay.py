"""The `Incident` golden histories replay against the current workflow code. `Incident`
auto-upgrades, so an open incident meets new code at its next task: a change to the
commands it emits needs `workflow.patched` (README, "Changing workflow code"); re-record
with `.venv/bin/python -m tests.replay.incident_histories`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.replay.incident_histories import OUT_DIR, SCENARIOS
from tests.replay.recorder import ReplayReport, replay_histories
from workers.app import WORKFLOWS

HISTORIES = sorted(OUT_DIR.glob("*.json"))


@pytest.fixture(scope="module")
async def replays() -> dict[Path, ReplayReport]:
    """Every Incident history replayed once, all by one replay worker."""
    return {report.path: report for report in await replay_histories(HISTORIES, WORKFLOWS)}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
def test_incident_history_replays(path: Path, replays: dict[Path, ReplayReport]) -> None:
    report = replays[path]
    assert report.is_ok, report.describe()


def test_every_incident_scenario_has_a_history_and_they_cover_every_update() -> None:
    assert {p.stem.split("-")[1] for p in HISTORIES} == set(SCENARIOS)
    updates, continued = set(), False
    for path in HISTORIES:
        for event in json.loads(path.read_text())["events"]:
            if accepted := event.get("workflowExecutionUpdateAcceptedEventAttributes"):
                updates.add(accepted["acceptedRequest"]["input"]["name"])
            continued |= "workflowExecutionContinuedAsNewEventAttributes" in event
    assert updates == {"join", "ack", "note", "run_step", "resolve"}
    assert continued
