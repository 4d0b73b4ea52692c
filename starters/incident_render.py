"""What `opsready incident` prints for people (the `--json` forms print the models)."""

from __future__ import annotations

from datetime import datetime

from rich.table import Column

from opsready.console import table, table_text
from opsready.incidents.postmortem import format_duration
from opsready.incidents.service import IncidentSummary
from workflows.incident_types import IncidentStatus

_SHOWN_TIMELINE = 40


def duration(seconds: float | None) -> str:
    """Seconds to a tenth under a minute (a demo's MTTD), else hours and minutes."""
    if seconds is not None and seconds < 60:
        return f"{seconds:.1f}s"
    return format_duration(seconds)


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at else "-"


def incidents_table(found: list[IncidentSummary], width: int | None = None) -> str:
    """One line per incident; the id is never cut: it is what the next command needs."""
    if not found:
        return "no incidents"
    rows = table(
        Column("incident", no_wrap=True, min_width=max(len(i.incident_id) for i in found)),
        Column("sev", no_wrap=True),
        Column("state", no_wrap=True),
        Column("agent", overflow="ellipsis", no_wrap=True),
        Column("opened", no_wrap=True),
        Column("title", overflow="ellipsis", no_wrap=True),
    )
    for i in found:
        rows.add_row(
            i.incident_id,
            i.severity or "-",
            i.state or "-",
            i.agent or "-",
            _when(i.opened_at),
            i.title or "-",
        )
    return table_text(rows, width)


def status_text(s: IncidentStatus) -> str:
    lines = [
        f"incident  {s.id}",
        f"title     {s.title}",
        f"severity  {s.severity.value}, {s.state.value} (agent {s.agent})",
        f"trigger   {s.trigger.kind}"
        + (f": {s.trigger.detail}" if s.trigger.detail else "")
        + "".join(f", {k} = {v:g}" for k, v in sorted(s.trigger.numbers.items())),
        f"impact    users: {s.user_impact}, safety: {'yes' if s.is_safety else 'no'}, "
        f"{len(s.affected_run_ids)} affected runs, {s.joins} repeated alerts joined",
        f"opened    {_when(s.opened_at)}, detected {_when(s.detected_at)}, "
        f"MTTD {duration(s.mttd_s)}",
    ]
    if s.acknowledged_at:
        lines.append(f"acked     {_when(s.acknowledged_at)} by {s.acknowledged_by}")
    if s.resolved_at:
        lines.append(
            f"resolved  {_when(s.resolved_at)} by {s.resolved_by}, MTTR "
            f"{duration(s.mttr_s)}: {s.resolution_summary}"
        )
    for page in s.paged:
        delivery = {None: "sending", True: "delivered", False: f"FAILED: {page.error}"}
        lines.append(
            f"paged     tier {page.tier} {page.target} at {_when(page.at)} "
            f"({delivery[page.is_delivered]})"
        )
    done = {run.step: run for run in s.steps_run}
    for step in s.plan:
        ran = done.get(step.key)
        state = ("done" if ran.is_ok else "FAILED") if ran else step.mode.replace("_", " ")
        lines.append(
            f"step      {step.key} v{step.runbook_version} [{state}]: {step.action} {step.target}"
        )
    for label, ref in (("evidence", s.evidence_open), ("evidence", s.evidence_resolve)):
        if ref:
            lines.append(f"{label}  {ref.path} (sha256 {ref.sha256})")
    if s.postmortem_path:
        lines.append(f"postmortem {s.postmortem_path}")
    lines.append("timeline")
    for entry in s.timeline[-_SHOWN_TIMELINE:]:
        lines.append(f"  {_when(entry.at)}  {entry.by:<12} {entry.kind:<12} {entry.text}")
    if len(s.timeline) > _SHOWN_TIMELINE:
        lines.append(f"  ({len(s.timeline) - _SHOWN_TIMELINE} earlier entries: --json)")
    return "\n".join(lines)


def resolved_text(s: IncidentStatus) -> str:
    lines = [
        f"{s.id}: resolved by {s.resolved_by}",
        f"  MTTD {duration(s.mttd_s)}, MTTR {duration(s.mttr_s)}",
    ]
    if s.evidence_resolve:
        lines.append(f"  evidence   {s.evidence_resolve.path}")
        lines.append(f"             sha256 {s.evidence_resolve.sha256}")
    if s.postmortem_path:
        lines.append(f"  postmortem {s.postmortem_path}")
    return "\n".join(lines)
