"""The postmortem draft tells the incident's story in neutral words, from its state alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from opsready.incidents.postmortem import draft_postmortem, format_duration
from workflows.incident_types import (
    EvidenceRef,
    IncidentState,
    IncidentStatus,
    IncidentTrigger,
    PageRecord,
    Severity,
    StepRun,
    TimelineEntry,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BLAME_WORDS = (
    "blame",
    "fault",
    "careless",
    "negligen",
    "mistake",
    "human error",
    "should have",
    "failed to",
    "culprit",
    "incompetent",
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def resolved_status() -> IncidentStatus:
    trigger = IncidentTrigger(
        kind="safety_rate",
        agent="support-triage",
        detail="refunds above policy",
        numbers={"safety_rate": 0.12, "threshold": 0.02},
        first_bad_at=at(-4),
        detected_at=T0,
    )
    return IncidentStatus(
        id="incident-support-triage-safety",
        dedup_key="support-triage-safety",
        title="support-triage proposes refunds above policy",
        agent="support-triage",
        severity=Severity.SEV1,
        state=IncidentState.RESOLVED,
        trigger=trigger,
        user_impact="some",
        is_safety=True,
        cost_usd_per_hour=3.5,
        affected_run_ids=[f"support-triage-r{i}" for i in range(12)],
        trace_ids=["4bf92f3577b34da6a3ce929d0e0e4736"],
        opened_at=T0,
        detected_at=T0,
        first_bad_at=at(-4),
        acknowledged_at=at(3),
        acknowledged_by="alice",
        mitigated_at=at(5),
        resolved_at=at(62),
        resolved_by="bob",
        resolution_summary="Refund prompt rolled back to v1; refunds re-enabled after review.",
        paged=[PageRecord(tier=1, target="support-oncall", at=T0, acked_at=at(3))],
        steps_run=[
            StepRun(
                step="fail-closed/kill-switch",
                action="engage_kill_switch",
                target="agent:support-triage",
                by="opsready",
                is_automatic=True,
                at=T0,
            ),
            StepRun(
                step="support-triage/rollback-prompt",
                action="rollback_flag",
                target="flag:prompt-version",
                by="alice",
                approved_by="bob",
                at=at(5),
            ),
        ],
        timeline=[
            TimelineEntry(at=at(3), kind="acknowledged", by="alice", text="acknowledged"),
            TimelineEntry(at=T0, kind="opened", by="opsready", text="opened as SEV1 | safety"),
            TimelineEntry(at=at(62), kind="resolved", by="bob", text="resolved"),
        ],
        evidence_open=EvidenceRef(path="/e/incident-open.tar.gz", sha256="a" * 64),
        mttd_s=240.0,
        mttr_s=3720.0,
    )


def test_draft_has_every_section_in_order() -> None:
    text = draft_postmortem(resolved_status())
    headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
    assert headings == [
        "Postmortem (draft): support-triage proposes refunds above policy",
        "Summary",
        "Impact",
        "Timeline",
        "Detection",
        "Response",
        "Evidence",
        "What helped",
        "What to improve",
        "Action items",
    ]


def test_timeline_table_is_in_time_order_with_who_did_what() -> None:
    text = draft_postmortem(resolved_status())
    rows = [line for line in text.splitlines() if line.startswith("| 2025-")]
    assert rows == [
        "| 2025-03-01 12:00:00 UTC | opsready | opened as SEV1 \\| safety |",
        "| 2025-03-01 12:03:00 UTC | alice | acknowledged |",
        "| 2025-03-01 13:02:00 UTC | bob | resolved |",
    ]


def test_detection_and_response_show_mttd_mttr_and_who_responded() -> None:
    text = draft_postmortem(resolved_status())
    assert "- Time to detect (MTTD): 4m 00s" in text
    assert "- Time to resolve from detection (MTTR): 1h 02m 00s" in text
    assert "(safety_rate = 0.12, threshold = 0.02)" in text
    assert "- Acknowledged: 2025-03-01 12:03:00 UTC by alice" in text
    assert (
        "`fail-closed/kill-switch` (engage_kill_switch on `agent:support-triage`) ran automatically"
        in text
    )
    assert "ran at the request of alice, approved by bob" in text
    assert "- Resolved: 2025-03-01 13:02:00 UTC by bob" in text


def test_impact_lists_a_few_runs_and_counts_the_rest() -> None:
    text = draft_postmortem(resolved_status())
    assert "- Users: some users were affected" in text
    assert "- Affected runs (12): `support-triage-r0`" in text
    assert "and 2 more" in text and "support-triage-r10" not in text
    assert "- Cost rate at detection: $3.50 per hour" in text


def test_evidence_hashes_and_action_item_placeholders_are_present() -> None:
    text = draft_postmortem(resolved_status())
    assert f"- at open: `/e/incident-open.tar.gz` (sha256 `{'a' * 64}`)" in text
    assert "- at resolve: none" in text
    assert "| action | owner | due | tracking |" in text


def test_draft_uses_no_blame_words() -> None:
    text = draft_postmortem(resolved_status()).lower().replace("blameless", "")
    assert [word for word in BLAME_WORDS if word in text] == []


def test_an_unresolved_incident_says_what_is_unknown() -> None:
    status = resolved_status().model_copy(
        update={
            "state": IncidentState.OPEN,
            "resolved_at": None,
            "resolved_by": None,
            "resolution_summary": None,
            "acknowledged_at": None,
            "first_bad_at": None,
            "mttd_s": None,
            "mttr_s": None,
            "paged": [],
            "steps_run": [],
        }
    )
    text = draft_postmortem(status)
    assert "- Time to detect (MTTD): unknown" in text
    assert "- Resolved: unknown" in text
    assert "- Acknowledged: not recorded" in text
    assert "- Paged: nobody" in text
    assert "Not resolved yet" in text


def test_durations_read_as_people_write_them() -> None:
    assert [format_duration(s) for s in (None, 42, 272.4, 3725)] == [
        "unknown",
        "42s",
        "4m 32s",
        "1h 02m 05s",
    ]
