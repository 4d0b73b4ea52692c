"""`opsready quota show|set|reset`: spend, reservations and limits of the quota ledgers
(one `QuotaLedger` workflow per user, tenant or agent; docs/controls.md)."""

from __future__ import annotations

import argparse

from pydantic import ValidationError

from opsready import quotas
from opsready.errors import OpsreadyError, one_line
from opsready.settings import Settings
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
from workflows.quota_types import LedgerView, QuotaLimits, usd

SCOPE_HELP = "KIND:ID, e.g. tenant:acme, user:u-1, agent:support-triage"


def register(commands: Subcommands) -> None:
    quota = add_group(commands, "quota", help="spend quotas across runs, per user, tenant, agent")
    show = add_command(
        quota,
        "show",
        cmd_quota_show,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="a ledger's spend, reservations and limits (no scope: every ledger)",
    )
    show.add_argument("scope", nargs="?", help=SCOPE_HELP)
    limits = add_command(
        quota,
        "set",
        cmd_quota_set,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="an operator's limits for a scope (they win over the agents' own)",
    )
    limits.add_argument("scope", help=SCOPE_HELP)
    limits.add_argument("--per-day", type=float, help="USD per UTC day")
    limits.add_argument("--per-month", type=float, help="USD per UTC month")
    limits.add_argument("--max-open-runs", type=int, help="runs open at once")
    reset = add_command(
        quota,
        "reset",
        cmd_quota_reset,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="spend of the current day and month back to zero",
    )
    reset.add_argument("scope", help=SCOPE_HELP)
    reset.add_argument(
        "--clear-limits", action="store_true", help="also drop the operator's limits"
    )
    reset.add_argument("--by", default=operator(), help="who resets (default: login name)")


async def cmd_quota_show(args: argparse.Namespace, settings: Settings) -> int:
    scope = quotas.parse_scope(args.scope) if args.scope is not None else None
    client = (await connect_client(args, settings)).temporal
    queue = settings.task_queue
    if scope is None:
        scopes = await quotas.list_ledgers(client, queue)
        views = [await quotas.ledger_view(client, queue, scope) for scope in scopes]
        if args.json:
            print_json(views)
        else:
            print("\n\n".join(render(view) for view in views) or "no quota ledgers")
        return 0
    _show(await quotas.ledger_view(client, queue, scope), as_json=args.json)
    return 0


async def cmd_quota_set(args: argparse.Namespace, settings: Settings) -> int:
    scope = quotas.parse_scope(args.scope)
    given = {
        "per_day_usd": args.per_day,
        "per_month_usd": args.per_month,
        "max_open_runs": args.max_open_runs,
    }
    if all(value is None for value in given.values()):
        raise OpsreadyError("give at least one of --per-day, --per-month, --max-open-runs")
    try:
        limits = QuotaLimits(**given)
    except ValidationError as err:
        raise OpsreadyError(f"invalid limits: {one_line(err)}") from None
    client = (await connect_client(args, settings)).temporal
    view = await quotas.set_limits(client, settings.task_queue, scope, limits)
    _show(view, as_json=args.json)
    return 0


async def cmd_quota_reset(args: argparse.Namespace, settings: Settings) -> int:
    scope = quotas.parse_scope(args.scope)
    client = (await connect_client(args, settings)).temporal
    view = await quotas.reset(
        client, settings.task_queue, scope, by=args.by, clear_limits=args.clear_limits
    )
    _show(view, as_json=args.json)
    return 0


def render(view: LedgerView) -> str:
    state, limits = view.state, view.effective_limits

    def against(spent: float, cap: float | None) -> str:
        return f"{usd(spent)} of {usd(cap)}" if cap is not None else f"{usd(spent)} (no limit)"

    lines = [
        f"ledger      {state.scope.label()}",
        f"today       {against(state.spent_day_usd, limits.per_day_usd)}",
        f"this month  {against(state.spent_month_usd, limits.per_month_usd)}",
        f"reserved    {usd(state.reserved_usd)} for {len(state.reservations)} call(s)",
    ]
    cap = limits.max_open_runs
    lines.append(f"open runs   {len(state.open_runs)}" + (f" of {cap}" if cap is not None else ""))
    for run in state.open_runs[:10]:
        lines.append(f"            {run}")
    set_by_operator = view.operator_limits.model_dump(exclude_none=True)
    if set_by_operator:
        shown = ", ".join(f"{k} {v:g}" for k, v in set_by_operator.items())
        lines.append(f"operator    {shown} (overrides the agents' limits)")
    return "\n".join(lines)


def _show(view: LedgerView, *, as_json: bool) -> None:
    if as_json:
        print_json(view)
    else:
        print(render(view))
