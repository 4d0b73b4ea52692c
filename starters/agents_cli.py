"""`opsready agents`: agent definitions and their released versions.

`list` shows each agent's current version, its archived versions (agents/versions/NAME/) and
whether the current file was edited without bumping `version`; `diff` compares two versions
(text and meaning); `snapshot` archives the current definition as its version; `slos` shows
each agent's SLOs and alert triggers.
"""

from __future__ import annotations

import argparse

from rich.table import Column

from opsready import agent_versions
from opsready.agent_versions import CURRENT, AgentDiff, AgentVersions
from opsready.agents import agent_slos, list_agents
from opsready.console import table, table_text
from opsready.settings import Settings
from opsready.slo import default_slos
from starters.cli_common import JSON_OUTPUT, Subcommands, add_command, add_group, print_json
from workflows.slo_types import AlertPolicy, Slo


def register(commands: Subcommands) -> None:
    agents = add_group(
        commands,
        "agents",
        help="agent definitions: versions, diffs, snapshots",
        description="Agent definitions (agents/NAME.toml) and their released versions, kept "
        "as exact copies in agents/versions/NAME/VERSION.toml.",
    )
    add_command(
        agents,
        "list",
        cmd_list,
        parents=(JSON_OUTPUT,),
        help="each agent: current version, archived versions, edited without a bump?",
    )
    diff = add_command(
        agents,
        "diff",
        cmd_diff,
        parents=(JSON_OUTPUT,),
        help="what changed between two versions of an agent",
    )
    diff.add_argument("agent", metavar="AGENT")
    diff.add_argument("old", metavar="V1", help=f"an archived version, or {CURRENT}")
    diff.add_argument("new", metavar="V2", help=f"an archived version, or {CURRENT}")
    snapshot = add_command(
        agents,
        "snapshot",
        cmd_snapshot,
        parents=(JSON_OUTPUT,),
        help="archive the current definition as agents/versions/NAME/VERSION.toml",
    )
    snapshot.add_argument("agent", metavar="AGENT")
    slos = add_command(
        agents,
        "slos",
        cmd_slos,
        parents=(JSON_OUTPUT,),
        help="each agent's SLOs (objective, window, threshold) and alert triggers",
    )
    slos.add_argument("agent", metavar="AGENT", nargs="?", help="one agent (default: all)")


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    listed = agent_versions.list_versions(settings.agents_dir)
    if args.json:
        print_json(listed)
    else:
        print(versions_table(listed))
    return 0


def cmd_diff(args: argparse.Namespace, settings: Settings) -> int:
    changed = agent_versions.diff(settings.agents_dir, args.agent, args.old, args.new)
    if args.json:
        print_json(changed)
    else:
        print(diff_text(changed), end="")
    return 0


def cmd_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    taken = agent_versions.snapshot(settings.agents_dir, args.agent)
    if args.json:
        print_json(taken)
    elif taken.is_new:
        print(f"archived {args.agent} {taken.version} as {taken.path}")
    else:
        print(f"{args.agent} {taken.version} is already archived, identical: {taken.path}")
    return 0


def cmd_slos(args: argparse.Namespace, settings: Settings) -> int:
    names = [args.agent] if args.agent else list_agents(settings.agents_dir)
    loaded = {name: agent_slos(settings.agents_dir, name) for name in names}
    if args.json:
        print_json(
            {
                name: {
                    "slos": [slo.model_dump(mode="json") for slo in slos],
                    "alerts": definition.alerts.model_dump(mode="json"),
                }
                for name, (definition, slos) in loaded.items()
            }
        )
        return 0
    blocks = [slos_text(name, slos, d.alerts) for name, (d, slos) in loaded.items()]
    print("\n\n".join(blocks) if blocks else "no agents")
    return 0


def slos_text(agent: str, slos: list[Slo], alerts: AlertPolicy) -> str:
    """One agent: a line naming it, its SLOs as a table, its automatic triggers."""
    rows = table(
        Column("SLO", no_wrap=True),
        Column("KIND", no_wrap=True),
        Column("OBJECTIVE", justify="right"),
        Column("WINDOW", justify="right"),
        Column("THRESHOLD", no_wrap=True),
    )
    for slo in slos:
        rows.add_row(
            slo.name, slo.kind.value, f"{slo.objective:.2%}", f"{slo.window_days}d", threshold(slo)
        )
    source = " (opsready's defaults)" if slos == default_slos() else ""
    return f"{agent}{source}\n{table_text(rows)}\n{triggers_text(alerts)}"


def threshold(slo: Slo) -> str:
    if slo.threshold_seconds is not None:
        return f"<= {slo.threshold_seconds:g} s"
    if slo.threshold_usd is not None:
        return f"<= ${slo.threshold_usd:g}"
    return "-"


def triggers_text(alerts: AlertPolicy) -> str:
    limits = [
        f"cost >= ${alerts.cost_usd_per_hour:g}/h" if alerts.cost_usd_per_hour else None,
        f"safety events per run >= {alerts.safety_events_per_run:g}"
        if alerts.safety_events_per_run
        else None,
        f"tool failures per call >= {alerts.tool_failure_rate:g}"
        if alerts.tool_failure_rate
        else None,
    ]
    shown = ", ".join(limit for limit in limits if limit) or "none"
    return f"incident triggers over the last {alerts.window_minutes} min: {shown}"


def versions_table(listed: list[AgentVersions]) -> str:
    if not listed:
        return "no agents"
    rows = table(
        Column("AGENT", no_wrap=True),
        Column("CURRENT", no_wrap=True),
        Column("ARCHIVED", overflow="fold"),
        Column("STATE", overflow="fold", ratio=1),
    )
    for entry in listed:
        archived = ", ".join(entry.archived_versions) or "-"
        rows.add_row(entry.agent, entry.current_version or "-", archived, _state(entry))
    return table_text(rows)


def _state(entry: AgentVersions) -> str:
    if entry.problem is not None:
        return f"invalid: {entry.problem}"
    if entry.current_version is None:
        return "archived only (no current definition)"
    if entry.is_edited_without_bump:
        return (
            f"EDITED without a version bump: differs from its {entry.current_version} archive; "
            f"bump `version`, then opsready agents snapshot {entry.agent}"
        )
    if not entry.is_current_archived:
        return f"not archived: opsready agents snapshot {entry.agent}"
    return "archived"


def diff_text(changed: AgentDiff) -> str:
    lines = [f"{changed.agent}: {changed.old} -> {changed.new}"]
    if not changed.changes:
        lines.append("  no changes")
    lines += [f"  {change.area:<18} {change.detail}" for change in changed.changes]
    text = "\n".join(lines) + "\n"
    return text + ("\n" + changed.unified_diff if changed.unified_diff else "")
