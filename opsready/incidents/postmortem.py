"""A blameless postmortem draft in Markdown from an incident's final state.

It states what happened, when and what the responders did, in neutral words, and leaves
prompts where the team writes what helped, what to improve and the action items.
"""

from __future__ import annotations

from datetime import datetime

from workflows.incident_types import IncidentStatus

_SHOWN_IDS = 10  # affected runs and traces listed by name; the rest are counted
_IMPACT_WORDS = {
    "none": "no users were affected as far as we know",
    "some": "some users were affected",
    "many": "many users were affected",
}


def draft_postmortem(status: IncidentStatus) -> str:
    """The draft, as Markdown; pure, so the CLI and an activity render the same text."""
    sections = [
        _header(status),
        _summary(status),
        _impact(status),
        _timeline(status),
        _detection(status),
        _response(status),
        _evidence(status),
        _prompts(),
    ]
    return "\n\n".join(section.rstrip() for section in sections) + "\n"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if at else "unknown"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.replace("|", "\\|").split())


def _header(s: IncidentStatus) -> str:
    return (
        f"# Postmortem (draft): {s.title}\n\n"
        "This review is blameless: it looks at how the system and our processes allowed this "
        "to happen and how to make a repeat less likely, assuming everyone acted in good "
        "faith on what they knew at the time.\n\n"
        f"- Incident: `{s.id}`\n"
        f"- Agent: `{s.agent}`\n"
        f"- Severity: {s.severity.value}\n"
        f"- State: {s.state.value}\n"
        f"- Opened: {_when(s.opened_at)}\n"
        f"- Resolved: {_when(s.resolved_at)}"
    )


def _summary(s: IncidentStatus) -> str:
    resolution = s.resolution_summary or "_Not resolved yet: describe how it ended._"
    return (
        "## Summary\n\n"
        f"The {s.trigger.kind} alarm for `{s.agent}` opened this {s.severity.value} incident"
        f"{': ' + s.trigger.detail if s.trigger.detail else ''}.\n\n"
        f"Resolution: {resolution}"
    )


def _ids(label: str, ids: list[str]) -> str:
    if not ids:
        return f"- {label}: none recorded"
    shown = ", ".join(f"`{i}`" for i in ids[:_SHOWN_IDS])
    more = f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else ""
    return f"- {label} ({len(ids)}): {shown}{more}"


def _impact(s: IncidentStatus) -> str:
    lines = [
        "## Impact",
        "",
        f"- Users: {_IMPACT_WORDS[s.user_impact]}",
        f"- Safety: {'yes, a safety incident' if s.is_safety else 'no safety impact recorded'}",
        f"- Cost rate at detection: ${s.cost_usd_per_hour:,.2f} per hour",
        _ids("Affected runs", s.affected_run_ids),
        _ids("Traces", s.trace_ids),
        f"- Repeated alerts that joined: {s.joins}",
        "",
        "_Add what users saw and for how long, in their words._",
    ]
    return "\n".join(lines)


def _timeline(s: IncidentStatus) -> str:
    rows = ["## Timeline", "", "| time | who | what |", "|---|---|---|"]
    entries = sorted(s.timeline, key=lambda e: e.at)
    rows += [f"| {_when(e.at)} | {_cell(e.by)} | {_cell(e.text)} |" for e in entries]
    if not entries:
        rows.append("| | | _no entries recorded_ |")
    return "\n".join(rows)


def _detection(s: IncidentStatus) -> str:
    numbers = ", ".join(f"{k} = {v:g}" for k, v in sorted(s.trigger.numbers.items()))
    return (
        "## Detection\n\n"
        f"- Trouble began: {_when(s.first_bad_at)}\n"
        f"- Detected: {_when(s.detected_at)} by the {s.trigger.kind} alarm"
        f"{f' ({numbers})' if numbers else ''}\n"
        f"- Time to detect (MTTD): {format_duration(s.mttd_s)}\n\n"
        "_Could we have known sooner? Which signal would have shown it first?_"
    )


def _response(s: IncidentStatus) -> str:
    lines = ["## Response", ""]
    pages = [f"tier {p.tier} {p.target} at {_when(p.at)}" for p in s.paged]
    lines.append(f"- Paged: {'; '.join(pages) if pages else 'nobody'}")
    if s.acknowledged_at:
        lines.append(f"- Acknowledged: {_when(s.acknowledged_at)} by {s.acknowledged_by}")
    else:
        lines.append("- Acknowledged: not recorded")
    for run in s.steps_run:
        how = "automatically" if run.is_automatic else f"at the request of {run.by}"
        approval = f", approved by {run.approved_by}" if run.approved_by else ""
        outcome = "done" if run.is_ok else f"did not complete ({run.detail})"
        lines.append(
            f"- Runbook step `{run.step}` ({run.action} on `{run.target}`) ran {how}{approval} "
            f"at {_when(run.at)}: {outcome}"
        )
    if s.mitigated_at:
        lines.append(f"- Mitigated: {_when(s.mitigated_at)}")
    resolved_by = f" by {s.resolved_by}" if s.resolved_by else ""
    lines.append(f"- Resolved: {_when(s.resolved_at)}{resolved_by}")
    lines.append(f"- Time to resolve from detection (MTTR): {format_duration(s.mttr_s)}")
    return "\n".join(lines)


def _evidence(s: IncidentStatus) -> str:
    lines = ["## Evidence", ""]
    for phase, ref in (("at open", s.evidence_open), ("at resolve", s.evidence_resolve)):
        lines.append(
            f"- {phase}: `{ref.path}` (sha256 `{ref.sha256}`)" if ref else f"- {phase}: none"
        )
    return "\n".join(lines)


def _prompts() -> str:
    return (
        "## What helped\n\n"
        "- _Which alarms, dashboards, runbook steps or people made the response faster?_\n\n"
        "## What to improve\n\n"
        "- _Where did the system, the tooling or the runbook make the response harder?_\n"
        "- _Which guardrail, test or alarm would have caught this earlier?_\n\n"
        "## Action items\n\n"
        "| action | owner | due | tracking |\n"
        "|---|---|---|---|\n"
        "| _describe the change_ | _team_ | _date_ | _issue link_ |\n"
        "| _describe the change_ | _team_ | _date_ | _issue link_ |"
    )
