"""SLO definitions of an agent: `[slo.<name>]` tables in its TOML file or in
`agents/<agent>.slo.toml` beside it, else opsready's defaults. Errors name file, field, fix.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from opsready.errors import ConfigError
from workflows.slo_types import Slo, SloKind

SLO_TABLE = "slo"
SLO_FILE_SUFFIX = ".slo.toml"  # agents/<agent>.slo.toml
_NOT_AGENTS = {"pricing.toml"}
_FIELDS = ("kind", "objective", "window_days", "threshold_seconds", "threshold_usd")
_HINTS = {
    "name": "use lowercase letters, digits, '-' and '_' (e.g. [slo.success])",
    "kind": "one of " + ", ".join(kind.value for kind in SloKind),
    "objective": "must be between 0 and 1 (e.g. 0.95)",
    "window_days": "must be a whole number of days from 1 to 90 (e.g. 30)",
    "threshold_seconds": "must be a number of seconds greater than 0 (e.g. 120)",
    "threshold_usd": "must be an amount in USD greater than 0 (e.g. 0.05)",
}


def default_slos() -> list[Slo]:
    """The SLOs of an agent that declares none: what a user of any agent would expect."""
    return [
        Slo(name="success", kind=SloKind.TASK_SUCCESS, objective=0.95),
        Slo(name="latency", kind=SloKind.LATENCY, objective=0.95, threshold_seconds=120),
        Slo(
            name="cost_per_success",
            kind=SloKind.COST_PER_SUCCESS,
            objective=0.95,
            threshold_usd=0.05,
        ),
        Slo(name="tool_errors", kind=SloKind.TOOL_ERROR_RATE, objective=0.99),
        Slo(name="tool_timeouts", kind=SloKind.TOOL_TIMEOUT_RATE, objective=0.995),
        Slo(name="safety", kind=SloKind.SAFETY_EVENT_RATE, objective=0.99),
    ]


def load_slos(
    agent_table: dict[str, Any] | None, *, source: Path, beside: Path | None
) -> list[Slo]:
    """The SLOs of one agent.

    `agent_table` is the agent's parsed TOML (its `slo` table is read) and `source` its file,
    for messages. `beside` is where an `<agent>.slo.toml` may be (absent is fine). An agent
    that declares SLOs gets exactly those (declaring one replaces all the defaults); one
    that declares none gets `default_slos()`. Declaring SLOs in both places is an error."""
    inline = (agent_table or {}).get(SLO_TABLE)
    separate = _read_toml(beside) if beside is not None and beside.is_file() else None
    if inline and separate is not None and separate.get(SLO_TABLE):
        raise ConfigError(
            f"{source}: [{SLO_TABLE}] is also defined in {beside}: keep SLOs in one of the two"
        )
    if separate is not None and beside is not None:
        unknown = sorted(set(separate) - {SLO_TABLE})
        if unknown:
            raise ConfigError(f"{beside}: {unknown[0]}: {_unknown_field_fix(unknown[0], ())}")
        if separate.get(SLO_TABLE):
            return parse_slo_table(separate[SLO_TABLE], source=beside)
    if inline is None or inline == {}:
        return default_slos()
    return parse_slo_table(inline, source=source)


def load_agent_slos(agents_dir: Path) -> dict[str, list[Slo]]:
    """The SLOs of every agent defined in `agents_dir` (`<agent>.toml`), by agent name."""
    slos: dict[str, list[Slo]] = {}
    for path in sorted(agents_dir.glob("*.toml")):
        if path.name in _NOT_AGENTS or path.name.startswith("_") or path.name.endswith(".slo.toml"):
            continue
        slos[path.stem] = load_slos(
            _read_toml(path), source=path, beside=agents_dir / f"{path.stem}{SLO_FILE_SUFFIX}"
        )
    return slos


def parse_slo_table(table: Any, *, source: Path) -> list[Slo]:
    """`[slo.<name>]` tables (the value of the `slo` key) as SLOs, in file order."""
    if not isinstance(table, dict):
        raise ConfigError(
            f"{source}: {SLO_TABLE}: must be a table of SLOs (e.g. [slo.success] kind = ...)"
        )
    return [_parse_one(name, entry, source) for name, entry in table.items()]


def _parse_one(name: str, entry: Any, source: Path) -> Slo:
    where = f"{source}: {SLO_TABLE}.{name}"
    if not isinstance(entry, dict):
        raise ConfigError(f'{where}: must be a table (e.g. [slo.{name}] kind = "task_success")')
    for field in entry:
        if field not in _FIELDS:
            raise ConfigError(f"{where}.{field}: {_unknown_field_fix(field, _FIELDS)}")
    if "kind" not in entry:
        raise ConfigError(f"{where}.kind: missing: {_HINTS['kind']}")
    if "objective" not in entry:
        raise ConfigError(f"{where}.objective: missing: {_HINTS['objective']}")
    kind = entry["kind"]
    if kind not in {k.value for k in SloKind}:
        raise ConfigError(f"{where}.kind: {_unknown_kind_fix(kind)}")
    for field in ("objective", "threshold_seconds", "threshold_usd"):
        # TOML booleans are ints to pydantic's lax mode; a `true` objective is a typo.
        if isinstance(entry.get(field), bool):
            raise ConfigError(f"{where}.{field}: {_HINTS[field]}")
    try:
        return Slo.model_validate({"name": name, **entry})
    except ValidationError as err:
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "kind"
        message = first["msg"].removeprefix("Value error, ")
        fix = message if first["type"] == "value_error" else _HINTS.get(field, message)
        suffix = "" if field == "name" else f".{field}"  # the name is the table's key
        raise ConfigError(f"{where}{suffix}: {fix}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read it: {err}") from None


def _unknown_kind_fix(kind: Any) -> str:
    choices = [k.value for k in SloKind]
    close = difflib.get_close_matches(str(kind), choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown kind {kind!r}{hint}: {_HINTS['kind']}"


def _unknown_field_fix(field: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(field, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "remove it"
    fields = ", ".join(known) if known else f"only [{SLO_TABLE}.<name>] tables"
    return f"unknown field: {hint} (allowed: {fields})"
