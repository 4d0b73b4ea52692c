"""The `opsready` command line: start, inspect, approve and stop agent runs; run the
local stack. Every command has `--help`; user mistakes print one line and exit non-zero:
2 bad input or config, 3 unknown run, 4 Temporal unreachable, 5 no worker acted on a
decision or halt in time, 130 interrupted."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from opsready.errors import ConfigError, OpsreadyError
from opsready.settings import PROJECT_ROOT, LogSettings, Settings
from starters import (
    agents_cli,
    deploy_cli,
    flags_cli,
    incident_cli,
    quota_cli,
    rollout_cli,
    runs_cli,
    shadow_cli,
    slo_cli,
)
from starters.cli_common import (
    ADDRESS_HELP,
    TEMPORAL,
    Subcommands,
    add_command,
    add_group,
    connect_client,
)

PROG = "opsready"
# Each group module adds its commands with `register(commands)`; every command's parsed
# arguments carry its `handler`.
COMMAND_GROUPS = (
    runs_cli,
    flags_cli,
    rollout_cli,
    shadow_cli,
    deploy_cli,
    agents_cli,
    incident_cli,
    slo_cli,
    quota_cli,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run AI agents in production on Temporal: start, inspect, approve, stop.",
    )
    parser.add_argument("--address", help=ADDRESS_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    register_local_stack(commands)
    return parser


def register_local_stack(commands: Subcommands) -> None:
    """The commands that run a worker or the dev tools (this module is the composition root:
    they import `workers` and `tests` inside the handler)."""
    add_command(
        commands,
        "setup",
        cmd_setup,
        parents=(TEMPORAL,),
        help="register opsready's search attributes on the namespace",
    )
    add_command(
        commands, "worker", cmd_worker, parents=(TEMPORAL,), help="run a worker (Ctrl-C stops it)"
    )
    add_command(commands, "dev", cmd_dev, help="local Temporal dev server with its UI + a worker")
    demo = add_command(commands, "demo", cmd_demo, help="run the support-triage demo end to end")
    demo.add_argument(
        "--keep-running", action="store_true", help="keep the server up after the demo"
    )

    bench = add_group(commands, "bench", help="benchmarks (not part of make test)")
    telemetry = add_command(
        bench, "telemetry", cmd_bench_telemetry, help="worker CPU per run with telemetry on vs off"
    )
    telemetry.add_argument("--runs", type=int, default=40, help="runs per round (40)")
    telemetry.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    kill = add_command(
        bench,
        "kill-switch",
        cmd_bench_kill_switch,
        help="seconds from a kill-switch flip until every open run is halted",
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

    overhead = add_command(
        bench,
        "overhead",
        cmd_bench_overhead,
        help="worker and server CPU, runs/s and history of AgentRun vs a bare workflow",
    )
    overhead.add_argument(
        "--k", type=_counts, default=[1, 5], help="tool calls per run, comma-separated (1,5)"
    )
    overhead.add_argument("--runs", type=int, default=10, help="runs per kind per round (10)")
    overhead.add_argument("--rounds", type=int, default=10, help="interleaved rounds (10)")
    overhead.add_argument("--concurrency", type=int, default=4, help="runs at once (4)")

    approval = add_command(
        bench,
        "approval",
        cmd_bench_approval,
        help="decide update and approval signal round trips vs a bare update and signal",
    )
    approval.add_argument("--decisions", type=int, default=30, help="decisions per kind (30)")
    memory = add_command(
        bench, "memory", cmd_bench_memory, help="worker RSS per run parked on an approval vs bare"
    )
    memory.add_argument("--runs", type=int, default=1000, help="parked runs per kind (1000)")
    replay = add_command(
        bench, "replay", cmd_bench_replay, help="events/s replaying a long AgentRun history vs bare"
    )
    replay.add_argument("--k", type=int, default=100, help="tool calls in the histories (100)")
    replay.add_argument("--copies", type=int, default=10, help="replays per round (10)")
    replay.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    burst = add_command(
        bench,
        "burst",
        cmd_bench_burst,
        help="state query latency and workflow-task timeouts while bursts of runs start",
    )
    burst.add_argument("--query-runs", type=int, default=200, help="runs started at once (200)")
    burst.add_argument("--runs", type=int, default=500, help="then a burst of this many (500)")

    history = add_group(commands, "history", help="golden histories for the replay tests")
    record = add_command(
        history, "record", cmd_history_record, help="record the demo scenarios' histories"
    )
    record.add_argument("--out", type=Path, default=PROJECT_ROOT / "tests" / "histories")


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


def _check_counts(args: argparse.Namespace) -> None:
    if args.runs < 1 or args.rounds < 1:
        raise OpsreadyError("--runs and --rounds must be at least 1")
    if getattr(args, "concurrency", 1) < 1:
        raise OpsreadyError("--concurrency must be at least 1")


def cmd_bench_telemetry(args: argparse.Namespace, settings: Settings) -> int:
    from workers.devtools.bench_telemetry import run_bench

    _check_counts(args)
    return run_bench(args.runs, args.rounds)


def cmd_bench_kill_switch(args: argparse.Namespace, settings: Settings) -> int:
    from workers.devtools.bench_kill_switch import run_bench

    _check_counts(args)
    try:
        return run_bench(args.runs, args.rounds, args.path)
    except TimeoutError:
        raise OpsreadyError(
            "bench kill-switch: runs did not reach the expected state in time "
            "(a busy machine?); try fewer --runs"
        ) from None


def _counts(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers, comma-separated") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: each must be at least 1")
    return values


def cmd_bench_overhead(args: argparse.Namespace, settings: Settings) -> int:
    from workers.devtools.bench.overhead import run_bench

    _check_counts(args)
    return run_bench(args.k, args.runs, args.rounds, args.concurrency)


def _at_least_one(*values: int) -> None:
    if min(values) < 1:
        raise OpsreadyError("counts must be at least 1")


def cmd_bench_approval(args: argparse.Namespace, settings: Settings) -> int:
    from workers.devtools.bench.approval import run_bench

    _at_least_one(args.decisions)
    return run_bench(args.decisions)


def cmd_bench_memory(args: argparse.Namespace, settings: Settings) -> int:
    from workers.devtools.bench.memory import run_bench

    _at_least_one(args.runs)
    return run_bench(args.runs)


def cmd_bench_replay(args: argparse.Namespace, settings: Settings) -> int:
    from workers.devtools.bench.replay import run_bench

    _at_least_one(args.k, args.copies, args.rounds)
    return run_bench(args.k, args.copies, args.rounds)


def cmd_bench_burst(args: argparse.Namespace, settings: Settings) -> int:
    from workers.devtools.bench.burst import run_bench

    _at_least_one(args.query_runs, args.runs)
    return run_bench(args.query_runs, args.runs)


def cmd_history_record(args: argparse.Namespace, settings: Settings) -> int:
    # The recorder and its scenarios are test code (tests/replay/), not part of the wheel:
    # recording works from a source checkout only.
    if not (PROJECT_ROOT / "tests" / "replay" / "recorder.py").is_file():
        raise OpsreadyError("golden histories are recorded from a source checkout: make histories")
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    from tests.replay.recorder import record

    record(settings, args.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from opsready.logs import configure_logging

    try:
        settings = Settings.from_env()
        configure_logging(settings=settings)
        outcome = args.handler(args, settings)
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
    except BrokenPipeError:
        # The reader went away (`opsready list --json | head`): as other Unix tools, stop
        # quietly; point stdout at devnull so the interpreter's final flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
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
