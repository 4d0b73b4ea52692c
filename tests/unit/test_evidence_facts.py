"""The evidence bundle says how each run ended in the run's own terms, however Temporal
closed it (workflows.run_end): read from golden histories, as the evidence activity reads
the histories it exports."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.incident_evidence import read_facts
from tests.replay.recorder import HISTORY_DIR, load_history

ENDINGS = {
    "completed-without-approval": "completed",  # Completed, the result in the close event
    "rejected-by-signal": "rejected",
    "failed-invalid-request": "failed",  # Failed: the result is the failure's first detail
    "halted-by-update": "halted",  # Canceled: the result is the close_halted input
    "halted-by-cancellation": "halted",
    "kill-switch-unknown-refused": "halted",
    "failed-model-error": "failed",
    "v2/failed-model-error": "failed",  # recorded before runs closed in Temporal's terms
    "continue-as-new-run1": "continued_as_new",
}


@pytest.mark.parametrize(("scenario", "status"), ENDINGS.items(), ids=list(ENDINGS))
async def test_a_runs_facts_say_how_it_ended_in_its_own_terms(scenario: str, status: str) -> None:
    generation, _, name = scenario.rpartition("/")
    history = load_history(HISTORY_DIR / generation / f"agent_run-{name}.json")
    client: Any = SimpleNamespace(data_converter=pydantic_data_converter)
    facts = await read_facts(client, history.workflow_id, history)
    assert facts.status == status
    assert facts.config is not None or scenario == "failed-invalid-request"  # no config ran
