"""What every `opsready` command group shares: the command type, JSON output, a client."""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Awaitable, Callable
from typing import Any

from opsready.client import OpsreadyClient
from opsready.settings import Settings

# A command takes the parsed arguments and the settings and returns an exit code.
Command = Callable[[argparse.Namespace, Settings], Awaitable[int] | int]
# `commands.add_parser(...)` of the top-level parser.
Subcommands = Any


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
