"""`opsready agents`: agent definitions and their released versions.

`list` shows each agent's current version, its archived versions (agents/versions/NAME/) and
whether the current file was edited without bumping `version`; `diff` compares two versions
(text and meaning); `snapshot` archives the current definition as its version.
"""

from __future__ import annotations

import argparse

from opsready import agent_versions
from opsready.agent_versions import CURRENT, AgentDiff, AgentVersions
from opsready.settings import Settings
from starters.cli_common import Command, Subcommands, print_json


def register(commands: Subcommands) -> dict[str, Command]:
    agents = commands.add_parser(
        "agents",
        help="agent definitions: versions, diffs, snapshots",
        description="Agent definitions (agents/NAME.toml) and their released versions, kept "
        "as exact copies in agents/versions/NAME/VERSION.toml.",
    )
    sub = agents.add_subparsers(dest="agents_command", metavar="SUBCOMMAND", required=True)

    listing = sub.add_parser(
        "list", help="each agent: current version, archived versions, edited without a bump?"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")

    diff = sub.add_parser("diff", help="what changed between two versions of an agent")
    diff.add_argument("agent", metavar="AGENT")
    diff.add_argument("old", metavar="V1", help=f"an archived version, or {CURRENT}")
    diff.add_argument("new", metavar="V2", help=f"an archived version, or {CURRENT}")
    diff.add_argument("--json", action="store_true", help="print JSON")

    snapshot = sub.add_parser(
        "snapshot", help="archive the current definition as agents/versions/NAME/VERSION.toml"
    )
    snapshot.add_argument("agent", metavar="AGENT")
    snapshot.add_argument("--json", action="store_true", help="print JSON")
    return {"agents": cmd_agents}


def cmd_agents(args: argparse.Namespace, settings: Settings) -> int:
    agents_dir = settings.agents_dir
    if args.agents_command == "list":
        listed = agent_versions.list_versions(agents_dir)
        if args.json:
            print_json(listed)
        else:
            print(versions_table(listed))
        return 0
    if args.agents_command == "diff":
        changed = agent_versions.diff(agents_dir, args.agent, args.old, args.new)
        if args.json:
            print_json(changed)
        else:
            print(diff_text(changed), end="")
        return 0
    taken = agent_versions.snapshot(agents_dir, args.agent)
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
    rows = [("AGENT", "CURRENT", "ARCHIVED", "STATE")]
    for entry in listed:
        rows.append(
            (
                entry.agent,
                entry.current_version or "-",
                ", ".join(entry.archived_versions) or "-",
                _state(entry),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


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
