"""`opsready flags`: list, read and change feature flags, and flip kill switches.

Changes go to LaunchDarkly through its REST API when LAUNCHDARKLY_API_TOKEN is set, else to the
local flag file (OPSREADY_FLAGS_FILE) that workers read through the SDK's file data source, so
either way running workers see a change within seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rich.table import Column

from opsready.console import table, table_text
from opsready.errors import FlagChangeError
from opsready.flags import FlagInfo, FlagNotFoundError, FlagStore, flag_store, kill_switch_key
from opsready.flags.values import check_flag_value
from opsready.names import did_you_mean, known_agents, known_tools
from opsready.settings import Settings
from starters.cli_common import (
    JSON_OUTPUT,
    Handler,
    Subcommands,
    add_command,
    add_group,
    print_json,
)

DESCRIPTION_WIDTH = 60
SERVING_WIDTH = 40


def register(commands: Subcommands) -> None:
    flags = add_group(
        commands,
        "flags",
        help="list and change feature flags; flip kill switches",
        description="List, read and change feature flags; flip kill switches. Changes go to "
        "LaunchDarkly when LAUNCHDARKLY_API_TOKEN is set, else to OPSREADY_FLAGS_FILE.",
    )
    add_command(
        flags,
        "list",
        _with_store(_list),
        parents=(JSON_OUTPUT,),
        help="every flag: on, what it serves, description",
    )
    get = add_command(
        flags, "get", _with_store(_get), parents=(JSON_OUTPUT,), help="one flag in full"
    )
    get.add_argument("key", metavar="KEY")
    set_ = add_command(
        flags,
        "set",
        _with_store(_set),
        parents=(JSON_OUTPUT,),
        help="turn a flag on and serve one value to everyone",
    )
    set_.add_argument("key", metavar="KEY")
    set_.add_argument(
        "value",
        metavar="VALUE",
        help="JSON when it parses (true, 3, null, '\"3\"', '[\"a\"]'), else plain text",
    )
    for name, step, help_text in (
        ("kill", _kill, "stop everything, one agent or one tool: its kill switch serves true"),
        ("unkill", _unkill, "undo a kill: the kill switch serves false again"),
    ):
        switch = add_command(flags, name, _with_store(step), parents=(JSON_OUTPUT,), help=help_text)
        scope = switch.add_mutually_exclusive_group()
        scope.add_argument(
            "--agent", metavar="AGENT", help="only this agent's runs (default: everything)"
        )
        scope.add_argument(
            "--tool", metavar="TOOL", help="only calls of this tool (default: everything)"
        )
        switch.add_argument("--reason", help="why; LaunchDarkly keeps it with the change")
        if name == "kill":
            switch.add_argument(
                "--force",
                action="store_true",
                help="kill an agent or tool the agent definitions do not know (e.g. another "
                "machine's)",
            )


Step = Callable[[argparse.Namespace, FlagStore, Settings], Awaitable[int]]


def _with_store(step: Step) -> Handler:
    """The handler of a `flags` subcommand: `step` with the configured flag store."""

    async def handler(args: argparse.Namespace, settings: Settings) -> int:
        # httpx logs each LaunchDarkly request at INFO; the command prints its own line.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        store = flag_store(settings)
        try:
            return await step(args, store, settings)
        finally:
            await store.aclose()

    return handler


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
    value, json_error = parse_value(args.value)
    check_flag_value(args.key, value, settings.agents_dir, json_error=json_error)
    info = await store.set_value(args.key, value)
    _report(args, info, f"{info.key} now serves {info.serving()}", store)
    return 0


def _scope(args: argparse.Namespace) -> str:
    return (
        f"agent {args.agent}" if args.agent else f"tool {args.tool}" if args.tool else "everything"
    )


async def _kill(args: argparse.Namespace, store: FlagStore, settings: Settings) -> int:
    key = kill_switch_key(args.agent, args.tool)
    existed = await _exists(store, key)
    if not existed and not args.force:
        _refuse_unknown_scope(args, key, settings)
    info = await store.kill(agent=args.agent, tool=args.tool, reason=args.reason)
    created = "" if existed else " (created)"
    line = f"killed {_scope(args)}: {key}{created} now serves {info.serving()}"
    _report(args, info, line, store)
    return 0


def _refuse_unknown_scope(args: argparse.Namespace, key: str, settings: Settings) -> None:
    """A kill that would create a switch for a name no agent definition knows is a typo until
    `--force` says otherwise: the real agent or tool would keep running."""
    if args.agent:
        kind, name, known = "agent", args.agent, known_agents(settings.agents_dir)
    elif args.tool:
        kind, name, known = "tool", args.tool, known_tools(settings.agents_dir)
    else:
        return
    if name in known:
        return
    where = (
        f"the agent definitions in {settings.agents_dir}"
        if known
        else f"no agent definitions found in {settings.agents_dir}"
    )
    raise FlagChangeError(
        f"unknown {kind} {name!r}{did_you_mean(name, known)} ({where}); "
        f"--force creates {key} anyway"
    )


async def _unkill(args: argparse.Namespace, store: FlagStore, settings: Settings) -> int:
    key = kill_switch_key(args.agent, args.tool)
    info = await store.unkill(agent=args.agent, tool=args.tool, reason=args.reason)
    _report(args, info, f"unkilled {_scope(args)}: {key} now serves {info.serving()}", store)
    return 0


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


def parse_value(text: str) -> tuple[Any, str | None]:
    """VALUE as JSON when it parses (`true`, `3`, `"3"`, `{}`), else the text itself, and
    why it is not JSON when it looks meant as JSON (`{`, `[` or `"` first)."""
    try:
        return json.loads(text, parse_constant=_no_constant), None
    except ValueError as err:
        if not text.lstrip().startswith(("{", "[", '"')):
            return text, None  # plain text, as meant
        if isinstance(err, json.JSONDecodeError):
            return text, f"{err.msg} at line {err.lineno} column {err.colno}"
        return text, str(err)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")  # NaN/Infinity: keep the text


def _as_json(info: FlagInfo) -> dict[str, Any]:
    return {**info.model_dump(mode="json"), "serving": info.serving()}


def flags_table(flags: list[FlagInfo], location: str) -> str:
    if not flags:
        return f"no flags in {location}"
    rows = table(
        Column("key", no_wrap=True),
        Column("on", no_wrap=True),
        Column("serving", overflow="ellipsis", no_wrap=True, max_width=SERVING_WIDTH),
        Column("description", overflow="ellipsis", no_wrap=True, max_width=DESCRIPTION_WIDTH),
    )
    for f in flags:
        rows.add_row(
            f.key, "yes" if f.on else "no", _one_line(f.serving()), _one_line(f.description)
        )
    return table_text(rows)


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
