"""`opsready flags`: list, read and change feature flags, and flip kill switches.

Changes go to LaunchDarkly through its REST API when LAUNCHDARKLY_API_TOKEN is set, else to the
local flag file (OPSREADY_FLAGS_FILE) that workers read through the SDK's file data source, so
either way running workers see a change within seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from opsready.flags import FlagInfo, FlagNotFoundError, FlagStore, flag_store, kill_switch_key
from opsready.settings import Settings
from starters.cli_common import Command, Subcommands, print_json

DESCRIPTION_WIDTH = 60
SERVING_WIDTH = 40


def register(commands: Subcommands) -> dict[str, Command]:
    flags = commands.add_parser(
        "flags",
        help="list and change feature flags; flip kill switches",
        description="List, read and change feature flags; flip kill switches. Changes go to "
        "LaunchDarkly when LAUNCHDARKLY_API_TOKEN is set, else to OPSREADY_FLAGS_FILE.",
    )
    sub = flags.add_subparsers(dest="flags_command", metavar="SUBCOMMAND", required=True)

    listing = sub.add_parser("list", help="every flag: on, what it serves, description")
    listing.add_argument("--json", action="store_true", help="print JSON")

    get = sub.add_parser("get", help="one flag in full")
    get.add_argument("key", metavar="KEY")
    get.add_argument("--json", action="store_true", help="print JSON")

    set_ = sub.add_parser("set", help="turn a flag on and serve one value to everyone")
    set_.add_argument("key", metavar="KEY")
    set_.add_argument(
        "value",
        metavar="VALUE",
        help="JSON when it parses (true, 3, null, '\"3\"', '[\"a\"]'), else plain text",
    )
    set_.add_argument("--json", action="store_true", help="print the flag as JSON")

    for name, help_text in (
        ("kill", "stop everything, one agent or one tool: its kill switch serves true"),
        ("unkill", "undo a kill: the kill switch serves false again"),
    ):
        switch = sub.add_parser(name, help=help_text)
        scope = switch.add_mutually_exclusive_group()
        scope.add_argument(
            "--agent", metavar="AGENT", help="only this agent's runs (default: everything)"
        )
        scope.add_argument(
            "--tool", metavar="TOOL", help="only calls of this tool (default: everything)"
        )
        switch.add_argument("--reason", help="why; LaunchDarkly keeps it with the change")
        switch.add_argument("--json", action="store_true", help="print the flag as JSON")
    return {"flags": cmd_flags}


async def cmd_flags(args: argparse.Namespace, settings: Settings) -> int:
    # httpx logs each LaunchDarkly request at INFO; this command prints its own one line.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    store = flag_store(settings)
    try:
        return await _SUBCOMMANDS[args.flags_command](args, store, settings)
    finally:
        await store.aclose()


async def _list(args: argparse.Namespace, store: FlagStore, settings: Settings) -> int:
    flags = sorted(await store.list_flags(), key=lambda f: f.key)
    if args.json:
        print_json([_as_json(f) for f in flags])
    else:
        print(flags_table(flags, store.location))
    return 0


async def _get(args: argparse.Namespace, store: FlagStore, settings: Settings) -> int:
    info = await store.get_flag(args.key)
    if args.json:
        print_json(_as_json(info))
    else:
        print(flag_text(info, store.location))
    return 0


async def _set(args: argparse.Namespace, store: FlagStore, settings: Settings) -> int:
    info = await store.set_value(args.key, parse_value(args.value))
    _report(args, info, f"{info.key} now serves {info.serving()}", store)
    return 0


async def _switch(args: argparse.Namespace, store: FlagStore, settings: Settings) -> int:
    key = kill_switch_key(args.agent, args.tool)
    scope = (
        f"agent {args.agent}" if args.agent else f"tool {args.tool}" if args.tool else "everything"
    )
    if args.flags_command == "unkill":
        info = await store.unkill(agent=args.agent, tool=args.tool, reason=args.reason)
        _report(args, info, f"unkilled {scope}: {key} now serves {info.serving()}", store)
        return 0
    existed = await _exists(store, key)
    info = await store.kill(agent=args.agent, tool=args.tool, reason=args.reason)
    created = "" if existed else " (created)"
    _report(args, info, f"killed {scope}: {key}{created} now serves {info.serving()}", store)
    if args.agent and not existed and not (settings.agents_dir / f"{args.agent}.toml").exists():
        print(
            f"note: no agent {args.agent!r} in {settings.agents_dir}; check the spelling",
            file=sys.stderr,
        )
    return 0


_SUBCOMMANDS: dict[str, Callable[[argparse.Namespace, FlagStore, Settings], Awaitable[int]]] = {
    "list": _list,
    "get": _get,
    "set": _set,
    "kill": _switch,
    "unkill": _switch,
}


async def _exists(store: FlagStore, key: str) -> bool:
    try:
        await store.get_flag(key)
    except FlagNotFoundError:
        return False
    return True


def _report(args: argparse.Namespace, info: FlagInfo, line: str, store: FlagStore) -> None:
    if args.json:
        print_json(_as_json(info))
    else:
        print(f"{line} (version {info.version}, {store.location})")


def parse_value(text: str) -> Any:
    """VALUE as JSON when it parses (`true`, `3`, `"3"`, `{}`), else the text itself."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")  # NaN/Infinity: keep the text


def _as_json(info: FlagInfo) -> dict[str, Any]:
    return {**info.model_dump(mode="json"), "serving": info.serving()}


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def flags_table(flags: list[FlagInfo], location: str) -> str:
    if not flags:
        return f"no flags in {location}"
    serving = {f.key: _cut(f.serving(), SERVING_WIDTH) for f in flags}
    key_width = max(len("key"), *(len(f.key) for f in flags))
    serving_width = max(len("serving"), *(len(s) for s in serving.values()))
    lines = [f"{'key':<{key_width}}  on   {'serving':<{serving_width}}  description"]
    for f in flags:
        lines.append(
            f"{f.key:<{key_width}}  {'yes' if f.on else 'no':<3}  "
            f"{serving[f.key]:<{serving_width}}  {_cut(f.description, DESCRIPTION_WIDTH)}"
        )
    return "\n".join(lines)


def flag_text(info: FlagInfo, location: str) -> str:
    variations = "  ".join(f"{i}={info.show(i)}" for i in range(len(info.variations)))
    return "\n".join(
        [
            f"flag         {info.key}",
            f"serving      {info.serving()}",
            f"on           {'yes' if info.on else 'no'}",
            f"variations   {variations or '-'}",
            f"version      {info.version}",
            f"description  {info.description or '-'}",
            f"where        {location}",
        ]
    )
