"""The `opsready` command line: start, inspect, approve and stop agent runs; run the
local stack. Every command has `--help`; user mistakes print one line and exit non-zero:
2 bad input or config, 3 unknown run, 4 Temporal unreachable, 130 interrupted."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from opsready.errors import ConfigError, OpsreadyError
from opsready.settings import PROJECT_ROOT, LogSettings, Settings
from starters import render
from starters.cli_common import Command, connect_client, operator, print_json
from workflows.types import RunStatus

PROG = "opsready"
# Command groups in their own modules; each has `register(commands) -> {name: command}`.
COMMAND_GROUPS = (
    "starters.flags_cli",
    "starters.rollout_cli",
    "starters.shadow_cli",
    "starters.deploy_cli",
    "starters.agents_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run AI agents in production on Temporal: start, inspect, approve, stop.",
    )
    parser.add_argument(
        "--address",
        help="Temporal frontend host:port (default: TEMPORAL_ADDRESS / envconfig profile, "
        "else localhost:7233)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="start an agent run")
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
    run.add_argument("--json", action="store_true", help="print JSON")

    status = commands.add_parser("status", help="show where a run stands")
    status.add_argument("run_id", metavar="RUN")
    status.add_argument("--json", action="store_true", help="print JSON")

    for name, verb in (("approve", "approve"), ("reject", "reject")):
        decide = commands.add_parser(name, help=f"{verb} the action a run waits on")
        decide.add_argument("run_id", metavar="RUN")
        decide.add_argument("--as", dest="approver", required=True, help="who decides")
        decide.add_argument(
            "--request-id", help="approval request id (needed when several are pending)"
        )
        decide.add_argument("--comment", help="why; kept in the audit")
        decide.add_argument("--json", action="store_true", help="print the state as JSON")

    listing = commands.add_parser("list", help="list recent agent runs")
    listing.add_argument("--status", choices=[s.value for s in RunStatus], help="AgentStatus")
    listing.add_argument("--agent", help="AgentName")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (50)")
    listing.add_argument("--json", action="store_true", help="print JSON")

    halt = commands.add_parser("halt", help="stop a run at once")
    halt.add_argument("run_id", metavar="RUN")
    halt.add_argument("--reason", required=True, help="why; kept in the result")
    halt.add_argument("--by", default=operator(), help="who halts (default: login name)")

    commands.add_parser("setup", help="register opsready's search attributes on the namespace")
    commands.add_parser("worker", help="run a worker (Ctrl-C stops it)")
    commands.add_parser("dev", help="local Temporal dev server with its UI + a worker")
    demo = commands.add_parser("demo", help="run the support-triage demo end to end")
    demo.add_argument(
        "--keep-running", action="store_true", help="keep the server up after the demo"
    )

    bench = commands.add_parser("bench", help="benchmarks (not part of make test)")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True)
    overhead = bench_commands.add_parser(
        "telemetry", help="worker CPU per run with telemetry on vs off"
    )
    overhead.add_argument("--runs", type=int, default=40, help="runs per round (40)")
    overhead.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    kill = bench_commands.add_parser(
        "kill-switch", help="seconds from a kill-switch flip until every open run is halted"
    )
    kill.add_argument("--runs", type=int, default=100, help="open runs per round (100)")
    kill.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    kill.add_argument(
        "--path",
        choices=["auto", "direct", "batch"],
        default="auto",
        help="how the listener halts: auto (direct signals up to a limit, else a batch "
        "operation), or always one of them (auto)",
    )

    history = commands.add_parser("history", help="golden histories for the replay tests")
    history_commands = history.add_subparsers(dest="history_command", required=True)
    record = history_commands.add_parser("record", help="record the demo scenarios' histories")
    record.add_argument("--out", type=Path, default=PROJECT_ROOT / "tests" / "histories")
    for group in COMMAND_GROUPS:
        COMMANDS.update(importlib.import_module(group).register(commands))
    return parser


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
            print(f"  follow it: opsready status {run_id}", file=sys.stderr)
        return 0
    result = await client.result(run_id)
    if args.json:
        print_json({"run_id": run_id, **result.model_dump(mode="json")})
    else:
        print(render.result_text(run_id, args.agent, result))
    return 0 if result.status is RunStatus.COMPLETED else 1


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    state = await (await connect_client(args, settings)).state(args.run_id)
    if args.json:
        print_json(state)
    else:
        print(render.state_text(args.run_id, state))
    return 0


async def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    client = await connect_client(args, settings)
    state = await client.decide(
        args.run_id,
        args.command == "approve",
        args.approver,
        request_id=args.request_id,
        comment=args.comment,
    )
    if args.json:
        print_json(state)
    else:
        verb = "approved" if args.command == "approve" else "rejected"
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
    await (await connect_client(args, settings)).halt(args.run_id, reason=args.reason, by=args.by)
    print(f"halt sent to {args.run_id}")
    return 0


async def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    from opsready.setup import ensure_search_attributes

    client = await connect_client(args, settings)
    added = await ensure_search_attributes(client.temporal)
    print(f"search attributes added: {', '.join(added)}" if added else "search attributes: ok")
    return 0


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.main import run_worker

    await run_worker(settings, address=args.address)
    return 0


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from workers.dev import run_dev

    return run_dev(settings)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from workers.devtools.demo import run_demo

    return run_demo(settings, keep_running=args.keep_running)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.runs < 1 or args.rounds < 1:
        raise OpsreadyError("--runs and --rounds must be at least 1")
    if args.bench_command == "kill-switch":
        from workers.devtools.bench_kill_switch import run_bench as run_kill_switch_bench

        try:
            return run_kill_switch_bench(args.runs, args.rounds, args.path)
        except TimeoutError:
            raise OpsreadyError(
                "bench kill-switch: runs did not reach the expected state in time "
                "(a busy machine?); try fewer --runs"
            ) from None
    from workers.devtools.bench_telemetry import run_bench

    return run_bench(args.runs, args.rounds)


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    # The recorder and its scenarios are test code (tests/replay/), not part of the wheel:
    # recording works from a source checkout only.
    if not (PROJECT_ROOT / "tests" / "replay" / "recorder.py").is_file():
        raise OpsreadyError("golden histories are recorded from a source checkout: make histories")
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    from tests.replay.recorder import record

    record(settings, args.out)
    return 0


COMMANDS: dict[str, Command] = {
    "run": cmd_run,
    "status": cmd_status,
    "approve": cmd_decide,
    "reject": cmd_decide,
    "list": cmd_list,
    "halt": cmd_halt,
    "setup": cmd_setup,
    "worker": cmd_worker,
    "dev": cmd_dev,
    "demo": cmd_demo,
    "history": cmd_history,
    "bench": cmd_bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from opsready.logs import configure_logging

    try:
        settings = Settings.from_env()
        configure_logging(settings=settings)
        outcome = COMMANDS[args.command](args, settings)
        if asyncio.iscoroutine(outcome):
            code: int = asyncio.run(outcome)
            return code
        assert isinstance(outcome, int)
        return outcome
    except OpsreadyError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        if _wants_traceback():
            raise
        print(
            f"{PROG}: internal error: {type(err).__name__}: {err} "
            "(set OPSREADY_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


def _wants_traceback() -> bool:
    """OPSREADY_DEBUG, read on its own: the error may be in the other settings."""
    try:
        return LogSettings.from_env().debug
    except ConfigError:
        return False


def entrypoint() -> None:
    """The console script. Exits without interpreter teardown: temporalio's Rust threads can
    abort a finalising interpreter (sdk-python issue #300), which would turn a finished
    command into a crash. Everything is flushed first; child processes are already stopped."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entrypoint()
