"""What an incident shows in the Temporal UI: its search attributes and current details.

Pure functions of the incident's state; the `Incident` workflow applies them on every
change, so the workflow list filters by severity and state and the detail page says who is
paged, what has run and what a responder can do next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeUpdate

from workflows import contract
from workflows.incident_types import IncidentState, IncidentStatus, PageRecord

_SHOWN_STEPS = 6


def search_attribute_updates(status: IncidentStatus) -> list[SearchAttributeUpdate[Any]]:
    return [
        contract.AGENT_NAME.value_set(status.agent),
        contract.INCIDENT_SEVERITY.value_set(status.severity.value),
        contract.INCIDENT_STATE.value_set(status.state.value),
    ]


def _clock(at: datetime) -> str:
    return f"{at:%H:%M:%S}Z"


def _paged_line(paged: list[PageRecord], status: IncidentStatus) -> str:
    if not paged:
        return "paged: nobody yet"
    tier = max(p.tier for p in paged)
    latest = [p for p in paged if p.tier == tier]
    who = ", ".join(dict.fromkeys(p.target for p in latest))
    problems = sorted({p.error for p in paged if p.error})
    delivery = f"; PAGE FAILED: {problems[-1]}" if problems else ""
    if status.acknowledged_at is not None:
        return f"paged: tier {tier} {who}; acknowledged by {status.acknowledged_by}{delivery}"
    return f"paged: tier {tier} {who} at {_clock(latest[0].at)}, not acknowledged{delivery}"


def current_details(status: IncidentStatus, escalates_at: datetime | None = None) -> str:
    """Markdown for the UI's "current details"."""
    lines = [
        f"**{status.severity.value} {status.state.value}**: {status.title} "
        f"(agent `{status.agent}`)",
        f"trigger: {status.trigger.kind}"
        + (f": {status.trigger.detail}" if status.trigger.detail else "")
        + (f" ({status.joins} repeated alerts joined)" if status.joins else ""),
        _paged_line(status.paged, status),
    ]
    if escalates_at is not None:
        lines.append(f"escalates to the next tier at {_clock(escalates_at)} unless acknowledged")
    ran = [
        f"{run.step} {'ok' if run.is_ok else 'FAILED'}" for run in status.steps_run[-_SHOWN_STEPS:]
    ]
    lines.append(f"ran: {', '.join(ran)}" if ran else "ran: nothing yet")
    done = {run.step for run in status.steps_run if run.is_ok}
    waiting = [
        f"{step.key}" + (" (needs approval)" if step.mode == "needs_approval" else "")
        for step in status.plan
        if step.key not in done and step.mode != "automatic"
    ]
    if status.state is IncidentState.RESOLVED:
        lines.append(f"resolved by {status.resolved_by}: {status.resolution_summary}")
        if status.postmortem_path:
            lines.append(f"postmortem draft: {status.postmortem_path}")
        return "\n\n".join(lines)
    if waiting:
        lines.append(f"steps on request: {', '.join(waiting)}")
    lines.append(
        f"respond: `opsready incident ack {status.id} --by NAME`, `... run {status.id} STEP "
        f"--by NAME`, `... resolve {status.id} --by NAME --summary TEXT`"
    )
    return "\n\n".join(lines)
