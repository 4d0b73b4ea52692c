"""`opsready agents`: agent definitions and their released versions.

`list` shows each agent's current version, its archived versions (agents/versions/NAME/) and
whether the current file was edited without bumping `version`; `diff` compares two versions
(text and meaning); `snapshot` archives the current definition as its version.
"""

from __future__ import annotations

import argparse

from rich.table import Column

from opsready import agent_versions
from opsready.agent_versions import CURRENT, AgentDiff, AgentVersions
from opsready.console import table, table_text
from opsready.settings import Settings
from starters.cli_common import JSON_OUTPUT, Subcommands, add_command, add_group, print_json


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
