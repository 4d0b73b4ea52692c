"""What every `opsready` command shares: how a command is declared (one parser, one
handler), the shared `--json` and `--address` options, JSON output, a client."""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Awaitable, Callable
from typing import Any

from opsready.client import OpsreadyClient
from opsready.settings import Settings

# A command's handler takes the parsed arguments and the settings; returns an exit code.
Handler = Callable[[argparse.Namespace, Settings], Awaitable[int] | int]
# `parser.add_subparsers(...)`: where a group adds its commands.
Subcommands = Any

ADDRESS_HELP = (
    "Temporal frontend host:port (default: TEMPORAL_ADDRESS / envconfig profile, "
    "else localhost:7233)"
)


def _json_option() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parent


def _address_option() -> argparse.ArgumentParser:
    # SUPPRESS: given after the command it wins; not given, the top-level value stands
    # (a subcommand's default would overwrite `opsready --address X COMMAND`).
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--address", default=argparse.SUPPRESS, help=ADDRESS_HELP)
    return parent


# Parents for `add_command(..., parents=[...])`.
JSON_OUTPUT = _json_option()
TEMPORAL = _address_option()


def add_command(
    commands: Subcommands,
    name: str,
    handler: Handler | None = None,
    *,
    parents: tuple[argparse.ArgumentParser, ...] = (),
    **options: Any,
) -> argparse.ArgumentParser:
    """A command (or a group, without a handler) whose parsed arguments carry `handler`."""
    parser: argparse.ArgumentParser = commands.add_parser(name, parents=list(parents), **options)
    if handler is not None:
        parser.set_defaults(handler=handler)
    return parser


def add_group(commands: Subcommands, name: str, **options: Any) -> Subcommands:
    """A command group (`opsready flags ...`): its subcommands are added to the result."""
    group = add_command(commands, name, **options)
    return group.add_subparsers(dest=f"{name}_command", metavar="SUBCOMMAND", required=True)


def print_json(value: Any) -> None:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in value]
    print(json.dumps(value, indent=2, default=str))


async def connect_client(args: argparse.Namespace, settings: Settings) -> OpsreadyClient:
    return await OpsreadyClient.connect(settings, address=args.address)


def operator() -> str:
    """Who is at the keyboard: the default for --by options."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "operator"
