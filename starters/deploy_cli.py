"""`opsready deploy`: which build of the workers new agent runs go to.

Workers run with Worker Deployment Versioning (deployment OPSREADY_DEPLOYMENT_NAME, build id
OPSREADY_BUILD_ID or version+commit); `AgentRun` is pinned, so a run finishes on the build
it started on, whatever these commands change. They route new runs only: show the routing,
promote a build, ramp a share of new runs to one, roll back.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from rich.table import Column

from opsready.connection import connect
from opsready.console import table, table_text
from opsready.deployment import DeploymentStatus, Routing, RoutingChange, WorkerDeployment
from opsready.errors import OpsreadyError
from opsready.settings import Settings
from starters.cli_common import (
    JSON_OUTPUT,
    TEMPORAL,
    Handler,
    Subcommands,
    add_command,
    add_group,
    print_json,
)

_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")


def register(commands: Subcommands) -> None:
    deploy = add_group(
        commands,
        "deploy",
        help="Worker Deployment Versioning: route new runs to a build, ramp, roll back",
        description="Route new agent runs between worker builds (Worker Deployment "
        "Versioning). Runs already started stay on their build until they end.",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[TEMPORAL, JSON_OUTPUT])
    common.add_argument(
        "--deployment",
        metavar="NAME",
        help="Worker Deployment name (default: OPSREADY_DEPLOYMENT_NAME, else opsready)",
    )
    add_command(
        deploy,
        "status",
        _on_deployment(_status),
        parents=(common,),
        help="current and ramping build, every version with its drainage and pinned runs",
    )
    current = add_command(
        deploy,
        "set-current",
        _on_deployment(_set_current),
        parents=(common,),
        help="send every new run to this build (promote)",
    )
    current.add_argument("build_id", metavar="BUILD")
    ramp = add_command(
        deploy,
        "ramp",
        _on_deployment(_ramp),
        parents=(common,),
        help="send PERCENT %% of new runs to BUILD (0 or --stop removes the ramp)",
    )
    ramp.add_argument("build_id", metavar="BUILD", nargs="?")
    ramp.add_argument("percent", metavar="PERCENT", nargs="?", help="above 0 and below 100")
    ramp.add_argument("--stop", action="store_true", help="remove the ramp")
    add_command(
        deploy,
        "rollback",
        _on_deployment(_rollback),
        parents=(common,),
        help="send new runs back to the build that was current before, and remove any ramp",
    )


Step = Callable[[argparse.Namespace, WorkerDeployment], Awaitable[int]]


def _on_deployment(step: Step) -> Handler:
    """The handler of a `deploy` subcommand: `step` on the named Worker Deployment."""

    async def handler(args: argparse.Namespace, settings: Settings) -> int:
        client = await connect(args.address)
        return await step(
            args, WorkerDeployment(client, args.deployment or settings.deployment_name)
        )

    return handler


async def _status(args: argparse.Namespace, deployment: WorkerDeployment) -> int:
    status = await deployment.status()
    if args.json:
        print_json(status)
    else:
        print(status_text(status))
    return 0


async def _set_current(args: argparse.Namespace, deployment: WorkerDeployment) -> int:
    return _report(args, await deployment.set_current(args.build_id))


async def _ramp(args: argparse.Namespace, deployment: WorkerDeployment) -> int:
    if args.stop:
        if args.percent is not None:
            raise OpsreadyError("give either --stop or a PERCENT, not both")
        return _report(args, await deployment.stop_ramp())
    if args.build_id is None or args.percent is None:
        raise OpsreadyError("usage: opsready deploy ramp BUILD PERCENT (or --stop)")
    percent = parse_percent(args.percent)
    if percent == 0:
        return _report(args, await deployment.stop_ramp())
    return _report(args, await deployment.ramp(args.build_id, percent))


async def _rollback(args: argparse.Namespace, deployment: WorkerDeployment) -> int:
    return _report(args, await deployment.rollback())


def parse_percent(text: str) -> float:
    """`30`, `12.5` or `30%`; one clear line for anything else."""
    match = _PERCENT.match(text)
    if match is None:
        raise OpsreadyError(f"PERCENT must be a number from 0 to 100, not {text!r}")
    return float(match.group(1))


def _report(args: argparse.Namespace, change: RoutingChange) -> int:
    if args.json:
        print_json(change)
    elif not change.is_changed:
        print(f"{change.deployment}: unchanged; new runs go to {routing_text(change.after)}")
    else:
        print(f"{change.deployment}: new runs go to {routing_text(change.after)}")
        print(f"  before: {routing_text(change.before)}")
    return 0


def routing_text(routing: Routing) -> str:
    current = routing.current or "the unversioned workers"
    if routing.ramping is None:
        return current
    return (
        f"{current} ({100 - routing.ramp_percentage:g}%) and "
        f"{routing.ramping} ({routing.ramp_percentage:g}%, ramping)"
    )


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def status_text(status: DeploymentStatus) -> str:
    lines = [
        f"Worker Deployment {status.deployment} (namespace {status.namespace})",
        f"  current   {status.current or '- (the unversioned workers)'}",
        "  ramping   "
        + (f"{status.ramping} at {status.ramp_percentage:g}%" if status.ramping else "-"),
        f"  rollback  {status.previous or '- (no version was current before)'}",
        "",
    ]
    rows = table(
        Column("BUILD", no_wrap=True),
        Column("STATUS", no_wrap=True),
        Column("DRAINAGE", no_wrap=True),
        Column("PINNED", justify="right", no_wrap=True),
        Column("CREATED", no_wrap=True),
    )
    for v in status.versions:
        pinned = "?" if v.open_pinned_runs is None else str(v.open_pinned_runs)
        rows.add_row(v.build_id, v.status, v.drainage or "-", pinned, _when(v.created_at))
    lines += [f"  {line}" for line in table_text(rows).splitlines()]
    lines.append("\n  PINNED: open agent runs that finish on that build.")
    return "\n".join(lines)
