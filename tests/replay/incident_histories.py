"""Golden histories of the `Incident` workflow, recorded on a throw-away time-skipping server
with the real activities (tests/workflows/incident_rig.py). `Incident` auto-upgrades: an
open incident moves to new code at its next task, so every change to the commands it emits
goes behind `workflow.patched`, and these histories must keep replaying
(tests/replay/test_incident_replay.py).

    .venv/bin/python -m tests.replay.incident_histories   # re-record tests/histories/incident/
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from opsready.setup import ensure_search_attributes
from tests.replay.scenarios import time_skipping_server_path
from tests.workflows.incident_rig import IncidentRig, alert, start_rig
from workflows.contract import INCIDENT_WORKFLOW
from workflows.incident_payload_types import IncidentInput
from workflows.incident_types import incident_id

OUT_DIR = Path(__file__).parent.parent / "histories" / "incident"


async def answered(rig: IncidentRig) -> str:
    """Open (an automatic runbook), a join, escalation to tier 2, ack, a note, a risky step
    with a second person's approval, resolve (evidence, MTTD/MTTR, postmortem)."""
    key = "golden-answered"
    now = await rig.env.get_current_time()
    opened = await rig.incidents.open(
        alert(key, user_impact="many", runs=["run-a"], detected_at=now, first_bad_s=90)
    )
    await rig.until(opened.incident_id, lambda s: len(s.steps_run) >= 2)
    await rig.incidents.open(alert(key, user_impact="many", runs=["run-b"], detected_at=now))
    await rig.until(opened.incident_id, lambda s: len(s.paged) == 2, skip=timedelta(seconds=300))
    await rig.incidents.ack(opened.incident_id, by="alice")
    await rig.incidents.note(opened.incident_id, by="alice", text="fallback is serving")
    await rig.incidents.run_step(
        opened.incident_id, "support-triage/rollback-prompt", by="alice", approved_by="bob"
    )
    await rig.incidents.resolve(opened.incident_id, by="alice", summary="prompt rolled back")
    await rig.restore_flags()
    return opened.incident_id


async def continued(rig: IncidentRig) -> str:
    """A long incident that continues as new, then resolves in its second run."""
    request = alert("golden-continued", kind="signal")
    handle = await rig.client.start_workflow(
        INCIDENT_WORKFLOW,
        IncidentInput(request=request, continue_as_new_after_events=30),
        id=incident_id(request.dedup_key),
        task_queue=rig.settings.task_queue,
    )
    first_run = handle.result_run_id
    for n in range(8):
        await rig.incidents.note(handle.id, by="alice", text=f"note {n}")
    async with asyncio.timeout(20):  # resolve in the second run, once it has continued
        while True:
            if (await handle.describe()).run_id != first_run:
                break
            await asyncio.sleep(0.05)
    await rig.incidents.resolve(handle.id, by="alice", summary="done")
    return handle.id


SCENARIOS = {"answered": answered, "continued": continued}


async def record(out_dir: Path = OUT_DIR) -> list[Path]:
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_server_path(),
        data_converter=pydantic_data_converter,
    )
    written = []
    try:
        await ensure_search_attributes(env.client)
        with tempfile.TemporaryDirectory() as root:
            async for rig in start_rig(env, Path(root)):
                for name, play in SCENARIOS.items():
                    workflow_id = await play(rig)
                    written += await _write_chain(env, workflow_id, name, out_dir)
    finally:
        await env.shutdown()
    return written


async def _write_chain(
    env: WorkflowEnvironment, workflow_id: str, name: str, out_dir: Path
) -> list[Path]:
    """Every run of the incident, first to last: from the latest run back along the
    continue-as-new links (the test server cannot list a workflow's runs)."""
    histories = []
    run_id: str | None = (await env.client.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        history = await env.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
    paths = []
    for number, history in enumerate(reversed(histories), start=1):
        path = out_dir / f"incident-{name}-run{number}.json"
        path.write_text(history.to_json())
        paths.append(path)
        print(f"wrote {path} ({len(history.events)} events)")
    return paths


if __name__ == "__main__":
    asyncio.run(record())
