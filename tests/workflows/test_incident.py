"""`Incident` on the time-skipping server with the real activities: paging, escalation at
the ack deadline, a pager that fails or hangs, joins, automatic runbook steps, evidence,
MTTD and MTTR, and continue-as-new."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.flags import evaluation_context, shared_flag_client
from opsready.errors import OpsreadyError
from opsready.incidents.evidence import EvidenceError, read_bundle, verify_bundle
from tests.workflows.incident_rig import IncidentRig, alert, start_rig
from workflows.contract import INCIDENT_WORKFLOW
from workflows.incident_payload_types import IncidentInput
from workflows.incident_types import IncidentStatus, incident_id


@pytest.fixture(scope="module")
async def rig(
    time_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[IncidentRig]:
    async for rig in start_rig(time_env, tmp_path_factory.mktemp("incidents")):
        yield rig


async def test_an_unacknowledged_page_escalates_at_the_ack_deadline(rig: IncidentRig) -> None:
    rig.pager.answer = 202
    # SEV2 (ack deadline 900 s); a `signal` alert runs no runbook by itself.
    incident = await rig.open(alert(rig.key("escalate"), kind="signal", user_impact="many"))
    opened = await rig.until(incident, lambda s: len(s.paged) == 1 and s.paged[0].is_delivered)
    assert opened.severity == "SEV2"
    assert [p.target for p in opened.paged] == ["support-oncall"]
    await rig.env.sleep(timedelta(seconds=890))
    assert [p.tier for p in (await rig.state(incident)).paged] == [1]
    escalated = await rig.until(incident, lambda s: len(s.paged) == 2, skip=timedelta(seconds=5))
    assert escalated.paged[1].tier == 2
    assert escalated.paged[1].target == "platform-oncall"
    assert (escalated.paged[1].at - escalated.paged[0].at) >= timedelta(seconds=900)
    await rig.incidents.ack(incident, by="alice")
    await rig.env.sleep(timedelta(seconds=5000))
    acked = await rig.state(incident)
    assert [p.tier for p in acked.paged] == [1, 2]  # acknowledged: escalation stopped
    assert acked.state == "acknowledged"
    actions = [body["action"] for body in rig.pager.bodies if body["incident_id"] == incident]
    assert actions == ["trigger", "trigger", "acknowledge"]


async def test_a_hanging_pager_never_blocks_the_incident_and_its_failure_is_on_the_timeline(
    rig: IncidentRig,
) -> None:
    rig.pager.answer = "hang"
    try:
        incident = await rig.open(alert(rig.key("hang")))
        # While the page hangs and is retried, the incident answers at once.
        await rig.incidents.note(incident, by="alice", text="looking")
        acked = await rig.incidents.ack(incident, by="alice")
        assert acked.acknowledged_by == "alice"
        assert acked.paged[0].is_delivered is None  # still being retried
        failed = await rig.until(
            incident, lambda s: s.paged[0].is_delivered is False, skip=timedelta(seconds=30)
        )
    finally:
        rig.pager.answer = 202
    assert failed.paged[0].is_delivered is False
    assert "did not answer" in (failed.paged[0].error or "")
    entry = next(
        e for e in failed.timeline if e.kind == "page_failed" and e.data["action"] == "trigger"
    )
    assert entry.by == "opsready"
    assert "trigger page to tier 1 (support-oncall) failed" in entry.text


async def test_a_pager_that_refuses_the_page_is_not_retried(rig: IncidentRig) -> None:
    rig.pager.answer = 400
    try:
        incident = await rig.open(alert(rig.key("refused")))
        failed = await rig.until(incident, lambda s: s.paged and s.paged[0].is_delivered is False)
    finally:
        rig.pager.answer = 202
    assert "refused the page with 400" in (failed.paged[0].error or "")
    assert len([b for b in rig.pager.bodies if b["incident_id"] == incident]) == 1


async def test_repeated_alerts_join_the_open_incident_and_a_resolved_one_lets_a_new_open(
    rig: IncidentRig,
) -> None:
    key = rig.key("join")
    first = await rig.incidents.open(alert(key, runs=["run-a"]))
    again = alert(key, runs=["run-b"], burn_rate=20.0)
    joined = await rig.incidents.open(again)
    retried = await rig.incidents.open(again)  # the same alert twice (a retried activity)
    assert first.is_new and not joined.is_new and not retried.is_new
    assert first.incident_id == joined.incident_id == retried.incident_id
    assert joined.joins == 1 and retried.joins == 1
    state = await rig.state(first.incident_id)
    assert state.affected_run_ids == ["run-a", "run-b"]
    assert [e.kind for e in state.timeline].count("joined") == 1
    await rig.incidents.resolve(first.incident_id, by="alice", summary="fixed")
    reopened = await rig.incidents.open(alert(key))
    assert reopened.is_new and reopened.joins == 0
    assert reopened.incident_id == first.incident_id
    assert (await rig.state(reopened.incident_id)).state == "open"


async def test_a_join_with_worse_impact_raises_the_severity_and_fails_closed(
    rig: IncidentRig,
) -> None:
    key = rig.key("worse")
    opened = await rig.incidents.open(alert(key, user_impact="some"))
    assert opened.severity == "SEV3"
    await rig.until(opened.incident_id, lambda s: bool(s.plan))  # its own policy is loaded
    await rig.incidents.open(alert(key, kind="safety_rate", user_impact="many", is_safety=True))
    state = await rig.until(opened.incident_id, all_automatic_steps_ran)
    assert state.severity == "SEV1"
    assert state.steps_run[0].step == "fail-closed/kill-switch"
    assert state.steps_run[0].is_ok, state.steps_run[0].detail
    assert rig.flag_value("kill-switch.agent.support-triage") is True
    await rig.restore_flags()
    assert any("severity raised from SEV3 to SEV1" in e.text for e in state.timeline)


def all_automatic_steps_ran(state: IncidentStatus) -> bool:
    automatic = [step for step in state.plan if step.mode == "automatic"]
    return bool(automatic) and len(state.steps_run) >= len(automatic)


async def test_resolve_computes_mttd_and_mttr_and_records_them_as_metrics(
    rig: IncidentRig,
) -> None:
    now = await rig.env.get_current_time()  # the server's clock: skipped ahead by other tests
    incident = await rig.open(alert(rig.key("timings"), detected_at=now, first_bad_s=120))
    await rig.env.sleep(timedelta(seconds=600))
    resolved = await rig.incidents.resolve(incident, by="bob", summary="rolled back the prompt")
    assert resolved.state == "resolved" and resolved.resolved_by == "bob"
    assert resolved.mttd_s == pytest.approx(120, abs=1)
    assert resolved.mttr_s is not None and 600 <= resolved.mttr_s < 700
    assert resolved.postmortem_path is not None
    draft = await asyncio.to_thread(Path(resolved.postmortem_path).read_text)
    assert "Time to detect (MTTD): 2m 00s" in draft
    assert "rolled back the prompt" in draft
    mttd = rig.metric_points("opsready.incident.mttd")
    assert any(p.sum == pytest.approx(120, abs=1) for p in mttd)
    assert rig.metric_points("opsready.incident.mttr")


async def test_the_evidence_bundle_holds_histories_and_flag_evaluations_and_its_hash_verifies(
    rig: IncidentRig, tmp_path: Path
) -> None:
    runs = [await rig.run_agent("Where is my order A-1003? It is late.") for _ in range(2)]
    incident = await rig.open(alert(rig.key("evidence"), runs=[*runs, "no-such-run"]))
    resolved = await rig.incidents.resolve(incident, by="alice", summary="done")
    ref, opened = resolved.evidence_resolve, resolved.evidence_open
    assert ref is not None and opened is not None
    verify_bundle(ref.path, ref.sha256)
    verify_bundle(opened.path, opened.sha256)
    files = read_bundle(ref.path)
    for run_id in runs:
        history = WorkflowHistory.from_json(run_id, files[f"runs/{run_id}/history.json"].decode())
        assert history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        run = json.loads(files[f"runs/{run_id}/run.json"])
        assert run["status"] == "completed"
        assert run["config"]["agent_version"] and run["config"]["config_hash"]
    flags = json.loads(files["flags.json"])
    evaluated = {flag["key"] for flag in flags["by_run"][runs[0]]}
    assert {"model", "prompt-version", "agent-variant"} <= evaluated
    assert flags["in_force"]["model"] == {"'' (variation 0)": 2}
    assert json.loads(files["alerts.json"])[0]["numbers"]["burn_rate"] == 14.4
    assert "no-such-run: no such run" in json.loads(files["problems.json"])
    assert "open/evidence-open.tar.gz" in files  # the resolve bundle holds the open one

    changed = tmp_path / "changed.tar.gz"
    data = bytearray(await asyncio.to_thread(Path(ref.path).read_bytes))
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    with pytest.raises(EvidenceError, match="the bundle was changed"):
        verify_bundle(changed, ref.sha256)


async def test_runbook_steps_answer_in_one_line_and_risky_ones_need_a_second_person(
    rig: IncidentRig,
) -> None:
    incident = await rig.open(alert(rig.key("steps"), kind="signal", user_impact="many"))
    await rig.until(incident, lambda s: bool(s.plan))
    with pytest.raises(OpsreadyError, match=r"unknown step 'nope/x' \(planned: "):
        await rig.incidents.run_step(incident, "nope/x", by="alice")
    with pytest.raises(OpsreadyError, match="is risky: it needs approved_by"):
        await rig.incidents.run_step(incident, "support-triage/rollback-prompt", by="alice")
    with pytest.raises(OpsreadyError, match="approved_by must be someone other than alice"):
        await rig.incidents.run_step(
            incident, "support-triage/rollback-prompt", by="alice", approved_by="alice"
        )
    await rig.store.set_value("prompt-version", "v2")
    run = await rig.incidents.run_step(
        incident, "support-triage/rollback-prompt", by="alice", approved_by="bob"
    )
    assert run.is_ok, run.detail
    assert rig.flag_value("prompt-version") == ""
    with pytest.raises(OpsreadyError, match="has already run"):
        await rig.incidents.run_step(
            incident, "support-triage/rollback-prompt", by="alice", approved_by="bob"
        )
    await rig.incidents.ack(incident, by="carol")
    with pytest.raises(OpsreadyError, match="already acknowledged by carol"):
        await rig.incidents.ack(incident, by="dave")
    state = await rig.state(incident)
    assert state.state == "mitigated"
    step = next(e for e in state.timeline if e.kind == "step")
    assert step.by == "alice"
    assert "rollback-prompt (runbook support-triage v1) approved by bob" in step.text


async def test_a_sev2_safety_alert_runs_its_runbook_by_itself_but_not_its_risky_steps(
    rig: IncidentRig,
) -> None:
    request = alert(rig.key("auto"), kind="safety_rate", user_impact="none", is_safety=True)
    incident = await rig.open(request)
    state = await rig.until(incident, all_automatic_steps_ran)
    assert state.severity == "SEV2"
    assert [(r.step, r.is_automatic, r.is_ok) for r in state.steps_run] == [
        ("support-triage/stop-refunds", True, True),
        ("support-triage/fallback-model", True, True),
    ]
    assert rig.flag_value("kill-switch.tool.refund_order") is True
    assert rig.flag_value("model") == "local/support-triage"
    modes = {step.key: step.mode for step in state.plan}
    assert modes["support-triage/pause-agent"] == "needs_approval"
    await rig.restore_flags()


async def test_a_manual_incident_keeps_the_declared_severity(rig: IncidentRig) -> None:
    request = alert(rig.key("manual"), kind="manual", user_impact="none")
    request = request.model_copy(update={"severity": "SEV2", "opened_by": "erin"})
    incident = await rig.open(request)
    state = await rig.until(incident, lambda s: bool(s.timeline))
    assert state.severity == "SEV2"
    assert state.timeline[0].kind == "opened" and state.timeline[0].by == "erin"


async def test_a_long_incident_continues_as_new_and_keeps_its_record(rig: IncidentRig) -> None:
    request = alert(rig.key("long"))
    handle = await rig.client.start_workflow(
        INCIDENT_WORKFLOW,
        IncidentInput(request=request, continue_as_new_after_events=40),
        id=incident_id(request.dedup_key),
        task_queue=rig.settings.task_queue,
    )
    first_run = handle.result_run_id
    for n in range(12):
        await rig.incidents.note(handle.id, by="alice", text=f"note {n}")
    async with asyncio.timeout(20):  # it continues as new once nothing runs beside it
        while True:
            if (await handle.describe()).run_id != first_run:
                break
            await asyncio.sleep(0.05)
    state = await rig.state(handle.id)
    notes = [e.text for e in state.timeline if e.kind == "note"]
    assert notes == [f"note {n}" for n in range(12)]
    assert state.timeline[0].kind == "opened"
    resolved = await rig.incidents.resolve(handle.id, by="alice", summary="done")
    assert resolved.state == "resolved"


async def test_a_paused_agent_refuses_new_runs_until_it_is_taken_off_the_list(
    rig: IncidentRig,
) -> None:
    request = alert(rig.key("pause"), kind="manual").model_copy(update={"severity": "SEV3"})
    incident = await rig.open(request)
    await rig.until(incident, lambda s: bool(s.plan))
    step = await rig.incidents.run_step(
        incident, "support-triage/pause-agent", by="alice", approved_by="bob"
    )
    assert step.is_ok, step.detail
    assert rig.flag_value("paused-agents") == ["support-triage"]
    flags = shared_flag_client(rig.settings)
    async with asyncio.timeout(10):  # the worker re-reads the flag file every 0.2 s
        while True:
            if flags.evaluate("paused-agents", evaluation_context("support-triage"), []).value:
                break
            await asyncio.sleep(0.05)
    await rig.run_agent(
        "Where is my order A-1003?", expect="failed", reason="support-triage is paused"
    )
    await rig.restore_flags()
    await rig.run_agent("Where is my order A-1003?", expect="completed")
