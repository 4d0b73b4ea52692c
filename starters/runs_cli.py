"""`opsready run | status | approve | reject | list | halt`: start, inspect, decide on and
stop agent runs, through the client API (`opsready.OpsreadyClient`)."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from contextlib import suppress

from opsready.client import ACT_TIMEOUT_SECONDS, OpsreadyClient
from opsready.errors import OpsreadyError
from opsready.run_workers import PendingCall
from opsready.settings import Settings
from opsready.waits import Wait
from starters import render
from starters.cli_common import (
    JSON_OUTPUT,
    TEMPORAL,
    Subcommands,
    add_command,
    connect_client,
    operator,
    print_json,
)
from workflows.types import AgentRunResult, RunStatus


def register(commands: Subcommands) -> None:
    run = add_command(
        commands, "run", cmd_run, parents=(TEMPORAL, JSON_OUTPUT), help="start an agent run"
    )
    run.add_argument("agent", help="agent name (a file agents/NAME.toml)")
    run.add_argument("text", help="the user's message")
    run.add_argument("--user", help="end user id (AgentUser)")
    run.add_argument("--tenant", help="tenant id (AgentTenant)")
    run.add_argument(
        "--request-id", help="caller's request id; the same id never starts a second run"
    )
    run.add_argument(
        "--wait", action="store_true", help="wait for the result; exit 1 unless it completed"
    )

    status = add_command(
        commands,
        "status",
        cmd_status,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="show where a run stands",
    )
    status.add_argument("run_id", metavar="RUN")

    for name, approved in (("approve", True), ("reject", False)):
        decide = add_command(
            commands,
            name,
            cmd_decide,
            parents=(TEMPORAL, JSON_OUTPUT),
            help=f"{name} the action a run waits on",
        )
        decide.set_defaults(approved=approved)
        decide.add_argument("run_id", metavar="RUN")
        decide.add_argument("--as", dest="approver", required=True, help="who decides")
        decide.add_argument(
            "--request-id", help="approval request id (needed when several are pending)"
        )
        decide.add_argument("--comment", help="why; kept in the audit")
        _wait_option(decide, "for a worker to take the decision")

    listing = add_command(
        commands,
        "list",
        cmd_list,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="list recent agent runs",
    )
    listing.add_argument("--status", choices=[s.value for s in RunStatus], help="AgentStatus")
    listing.add_argument("--agent", help="AgentName")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (50)")

    halt = add_command(
        commands, "halt", cmd_halt, parents=(TEMPORAL, JSON_OUTPUT), help="stop a run at once"
    )
    halt.add_argument("run_id", metavar="RUN")
    halt.add_argument("--reason", required=True, help="why; kept in the result")
    halt.add_argument("--by", default=operator(), help="who halts (default: login name)")
    _wait_option(halt, "for the run to stop")


def _wait_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--wait-seconds",
        type=float,
        default=ACT_TIMEOUT_SECONDS,
        metavar="S",
        help=f"wait this long {what}; then say no worker did and which one to start "
        f"(exit 5) ({ACT_TIMEOUT_SECONDS:g})",
    )


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_client(args, settings)
    run_id = await client.start_run(
        args.agent, args.text, user_id=args.user, tenant_id=args.tenant, request_id=args.request_id
    )
    if not args.wait:
        if args.json:
            print_json({"run_id": run_id})
        else:
            print(run_id)
            print(f"  follow it: opsready status {shlex.quote(run_id)}", file=sys.stderr)
        return 0
    result = render.redacted(await _result_telling_what_it_waits_for(client, run_id))
    if args.json:
        print_json({"run_id": run_id, **result.model_dump(mode="json")})
    else:
        print(render.result_text(run_id, args.agent, result))
    return 0 if result.status is RunStatus.COMPLETED else 1


async def _result_telling_what_it_waits_for(client: OpsreadyClient, run_id: str) -> AgentRunResult:
    """The run's result; meanwhile each approval it asks for is announced on stderr with
    the commands that answer it, so `run --wait` is never silent about why it waits."""
    result = asyncio.ensure_future(client.result(run_id))
    announced: set[str] = set()
    every = 0.5
    try:
        while not result.done():
            with suppress(OpsreadyError):  # no worker to answer the query right now
                for pending in (await client.state(run_id)).pending_approvals:
                    if pending.request_id not in announced:
                        announced.add(pending.request_id)
                        print(render.awaiting_text(run_id, pending), file=sys.stderr)
            await asyncio.wait({result}, timeout=every)
            every = min(every * 2, 5.0)
        return result.result()
    finally:
        result.cancel()


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_client(args, settings)
    state = render.redacted(await client.state(args.run_id))
    calls: list[PendingCall] = []
    waits: list[Wait] = []
    if not state.status.is_terminal:
        # The calls in flight (retries, last error) and what a scheduled one waits on (a
        # rate limit, a free worker), from Temporal's description of the run.
        calls, waits = await asyncio.gather(
            client.pending_calls(args.run_id), client.waits(args.run_id)
        )
    if args.json:
        print_json(
            {
                **state.model_dump(mode="json"),
                "pending_calls": calls,
                "waits": [w.model_dump() for w in waits],
            }
        )
    else:
        print(render.state_text(args.run_id, state, calls))
        for wait in waits:
            print(f"waiting   {wait.describe()}")
    return 0


async def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_client(args, settings)
    state = await client.decide(
        args.run_id,
        args.approved,
        args.approver,
        request_id=args.request_id,
        comment=args.comment,
        wait_seconds=args.wait_seconds,
    )
    if args.json:
        print_json(state)
    else:
        verb = "approved" if args.approved else "rejected"
        print(f"{verb} by {args.approver}; {args.run_id} is now {state.status.value}")
    return 0


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise OpsreadyError("--limit must be at least 1")
    runs = await (await connect_client(args, settings)).list_runs(
        status=args.status, agent=args.agent, limit=args.limit
    )
    if args.json:
        print_json(runs)
    else:
        print(render.runs_table(runs))
    return 0


async def cmd_halt(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_client(args, settings)
    state = await client.halt(
        args.run_id, reason=args.reason, by=args.by, wait_seconds=args.wait_seconds
    )
    if args.json:
        print_json(render.redacted(state))
    else:
        print(f"halted by {args.by}; {args.run_id} is now {state.status.value}")
    return 0
