"""`opsready slo`: where each agent's SLOs stand, the HTML report, the Prometheus rules and
the monitor's Schedule. Numbers come from Temporal visibility, as the monitor reads them,
so every host prints the same."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.table import Column

from opsready.agents import agent_slos, list_agents
from opsready.console import table, table_text, waiting
from opsready.errors import OpsreadyError
from opsready.settings import Settings
from opsready.slo import load_agent_slos, rules_yaml
from opsready.slo.schedule import MonitorState, monitor_state, pause_monitor, start_monitor
from opsready.slo.source import VisibilitySliSource
from opsready.slo.status import SloStatus, slo_status
from starters.cli_common import (
    JSON_OUTPUT,
    TEMPORAL,
    Subcommands,
    add_command,
    add_group,
    connect_client,
    operator,
    print_json,
)
from starters.rollout_request import seconds_of
from workflows.slo_monitor_types import DEFAULT_EVERY_SECONDS
from workflows.slo_types import DEFAULT_BURN_POLICY

MAX_REPORT_DAYS = 90
DEFAULT_POINTS, MIN_POINTS, MAX_POINTS = 24, 2, 200
MIN_EVERY_SECONDS = 10


def register(commands: Subcommands) -> None:
    slo = add_group(
        commands,
        "slo",
        help="SLOs: error budgets and burn rates, the HTML report, Prometheus rules, monitor",
        description="Each agent's SLOs (agents/NAME.toml [slo.*], else the defaults), "
        "measured over Temporal visibility: the runs every worker records.",
    )
    status = add_command(
        slo,
        "status",
        cmd_status,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="each SLO: error budget left and burn rate per window pair",
    )
    status.add_argument("--agent", metavar="AGENT", help="one agent (default: all)")
    report = add_command(
        slo,
        "report",
        cmd_report,
        parents=(TEMPORAL,),
        help="write a self-contained HTML report: budget, burn rates, cost, incidents",
    )
    report.add_argument("--agent", metavar="AGENT", required=True)
    report.add_argument("--html", metavar="FILE", type=Path, required=True)
    report.add_argument("--days", type=float, default=7.0, help="the period (7 days)")
    report.add_argument(
        "--points",
        type=int,
        default=DEFAULT_POINTS,
        help=f"points in time per plot ({DEFAULT_POINTS}); each costs a few visibility counts",
    )
    rules = add_command(
        slo, "rules", cmd_rules, help="Prometheus recording and alerting rules for every SLO"
    )
    rules.add_argument("--out", metavar="FILE", type=Path, help="write here (default: stdout)")

    monitor = add_group(slo, "monitor", help="the SLO monitor's Temporal Schedule")
    start = add_command(
        monitor,
        "start",
        cmd_monitor_start,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="create (or update and resume) the Schedule; its first pass runs now",
    )
    start.add_argument(
        "--every", default=f"{DEFAULT_EVERY_SECONDS}s", help="interval: 1m, 30s, 5m (1m)"
    )
    start.add_argument(
        "--agent", metavar="AGENT", action="append", help="watch only these (repeatable)"
    )
    pause = add_command(
        monitor, "pause", cmd_monitor_pause, parents=(TEMPORAL, JSON_OUTPUT), help="pause it"
    )
    pause.add_argument("--reason", help="kept as the Schedule's note")
    add_command(
        monitor,
        "status",
        cmd_monitor_status,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="paused or not, the interval, next passes, what recent passes found",
    )


# --- status and report --------------------------------------------------------------------


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    names = [args.agent] if args.agent else list_agents(settings.agents_dir)
    loaded = {name: agent_slos(settings.agents_dir, name)[1] for name in names}
    client = await connect_client(args, settings)
    source = VisibilitySliSource(client.temporal)
    now = datetime.now(UTC)
    with waiting("counting runs in Temporal visibility"):
        statuses = [s for n, slos in loaded.items() for s in await slo_status(source, n, slos, now)]
    if args.json:
        print_json([_status_json(s) for s in statuses])
    else:
        print(status_table(statuses))
    return 0


def _status_json(status: SloStatus) -> dict[str, object]:
    shown = status.model_dump(mode="json", exclude={"burns"})
    shown["burns"] = [
        {
            "window": burn.window.label,
            "action": burn.window.action,
            "factor": burn.window.factor,
            "long_rate": burn.long_rate,
            "short_rate": burn.short_rate,
            "is_alerting": burn.is_alerting,
        }
        for burn in status.burns
    ]
    return shown


def status_table(statuses: list[SloStatus], width: int | None = None) -> str:
    if not statuses:
        return "no agents"
    rows = table(
        Column("AGENT", no_wrap=True),
        Column("SLO", no_wrap=True),
        Column("KIND", no_wrap=True),
        Column("OBJECTIVE", justify="right"),
        Column("EVENTS", justify="right"),
        Column("BUDGET LEFT", justify="right"),
        *(Column(f"BURN {pair.label}", no_wrap=True) for pair in DEFAULT_BURN_POLICY),
    )
    for status in statuses:
        budget = status.budget
        rows.add_row(
            status.agent,
            status.slo.name,
            status.slo.kind.value,
            f"{status.slo.objective:.2%}/{status.slo.window_days}d",
            str(budget.total),
            f"{budget.remaining:.1%}" if budget.total else "-",
            *(
                f"{b.long_rate:.1f}x/{b.short_rate:.1f}x"
                + (f" {b.window.action.upper()}" if b.is_alerting else "")
                for b in status.burns
            ),
        )
    note = (
        "burn: long/short window, x the sustainable rate; a pair alerts when both reach "
        + ", ".join(f"{p.factor:g}x ({p.label})" for p in DEFAULT_BURN_POLICY)
    )
    return f"{table_text(rows, width)}\n{note}"


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    if not 0 < args.days <= MAX_REPORT_DAYS:
        raise OpsreadyError(f"--days: {args.days:g} is not between 0 and {MAX_REPORT_DAYS}")
    if not MIN_POINTS <= args.points <= MAX_POINTS:
        raise OpsreadyError(f"--points: {args.points} is not between {MIN_POINTS} and {MAX_POINTS}")
    if args.html.is_dir():
        raise OpsreadyError(f"--html: {args.html} is a directory; give a file name")
    _, slos = agent_slos(settings.agents_dir, args.agent)
    client = await connect_client(args, settings)
    # matplotlib is imported here: only this command draws.
    from opsready.slo.report import write_html_report
    from opsready.slo.report_data import report_data

    with waiting(f"reading {args.days:g} days of {args.agent} from Temporal visibility"):
        data = await report_data(
            client.temporal, args.agent, slos, days=args.days, points=args.points
        )
    try:
        path = write_html_report(args.html, data)
    except OSError as err:
        raise OpsreadyError(f"--html: cannot write {args.html}: {err.strerror}") from None
    print(f"wrote {path} ({len(data.slos)} SLOs, {len(data.incidents)} incidents)")
    return 0


def cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    text = rules_yaml(load_agent_slos(settings.agents_dir))
    if args.out is None:
        print(text, end="")
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    except OSError as err:
        raise OpsreadyError(f"--out: cannot write {args.out}: {err.strerror}") from None
    print(f"wrote {args.out}")
    return 0


# --- the monitor's Schedule ---------------------------------------------------------------


async def cmd_monitor_start(args: argparse.Namespace, settings: Settings) -> int:
    every = seconds_of(args.every, "--every")
    if every < MIN_EVERY_SECONDS:
        raise OpsreadyError(f"--every: at least {MIN_EVERY_SECONDS}s between passes")
    for agent in args.agent or []:
        agent_slos(settings.agents_dir, agent)  # an unknown agent is refused now, not later
    client = await connect_client(args, settings)
    state = await start_monitor(
        client.temporal,
        task_queue=settings.task_queue,
        every=timedelta(seconds=every),
        agents=args.agent,
    )
    return _print_state(args, state)


async def cmd_monitor_pause(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_client(args, settings)
    reason = args.reason or f"paused by {operator()}"
    return _print_state(args, await pause_monitor(client.temporal, reason))


async def cmd_monitor_status(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_client(args, settings)
    return _print_state(args, await monitor_state(client.temporal))


def _print_state(args: argparse.Namespace, state: MonitorState) -> int:
    if args.json:
        print_json(state)
    else:
        print(monitor_text(state))
    return 0


def monitor_text(state: MonitorState) -> str:
    if not state.exists:
        return (
            f"SLO monitor: not started (opsready slo monitor start); schedule {state.schedule_id}"
        )
    every = f"every {state.every_seconds:g}s" if state.every_seconds else "no interval"
    watched = ", ".join(state.agents) if state.agents else "every agent"
    lines = [
        f"SLO monitor: {'PAUSED' if state.paused else 'running'} ({every}, {watched}, "
        f"task queue {state.task_queue}); schedule {state.schedule_id}",
    ]
    if state.note:
        lines.append(f"note: {state.note}")
    if state.next_runs and not state.paused:
        lines.append(f"next pass: {state.next_runs[0]:%Y-%m-%d %H:%M:%S %Z}")
    for recent in reversed(state.recent):
        found = ""
        if recent.report is not None:
            r = recent.report
            found = f": {len(r.alerts)} alerts, {len(r.requested)} incidents asked for"
            found += f", {len(r.failed)} failed" if r.failed else ""
        lines.append(f"  {recent.started_at:%H:%M:%S} {recent.workflow_id} {recent.status}{found}")
    return "\n".join(lines)
