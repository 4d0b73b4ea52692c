"""Incident configuration from TOML: the severity matrix, runbooks and the on-call rota.

The files live in `agents/incidents/` (field reference: its README.md). A missing severity
or on-call file means the built-in defaults; a malformed one is refused with one line that
names the file, the field and the fix, because operators edit these files mid-incident.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opsready.errors import ConfigError
from workflows.incident_config_types import OnCallRota, Runbook, SeverityMatrix

INCIDENTS_DIR = "incidents"  # under agents/: not *.toml beside the agents, so never an agent
SEVERITY_FILE = "severity.toml"
RUNBOOKS_FILE = "runbooks.toml"
ONCALL_FILE = "oncall.toml"


class OnCallConfig(OnCallRota):
    """`[oncall]`: the default owner and tiers; `[oncall.agents.NAME]` for one agent."""

    agents: dict[str, OnCallRota] = Field(default_factory=dict)

    def rota_for(self, agent: str) -> OnCallRota:
        return self.agents.get(agent) or OnCallRota(owner=self.owner, tiers=self.tiers)


class _OnCallFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    oncall: OnCallConfig = Field(default_factory=OnCallConfig)


class _RunbooksFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runbooks: dict[str, Runbook] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _name_from_table(cls, data: Any) -> Any:
        """`[runbooks.NAME]` names the runbook; a `name` inside must agree."""
        tables = data.get("runbooks") if isinstance(data, dict) else None
        if isinstance(tables, dict):
            for key, table in tables.items():
                if isinstance(table, dict):
                    table.setdefault("name", key)
        return data

    @model_validator(mode="after")
    def _names_agree(self) -> _RunbooksFile:
        for key, runbook in self.runbooks.items():
            if runbook.name != key:
                raise ValueError(
                    f"runbooks.{key}.name: {runbook.name!r} differs from the table name "
                    f"{key!r}: drop `name` or make them equal"
                )
        return self


class IncidentConfig(BaseModel):
    matrix: SeverityMatrix = Field(default_factory=SeverityMatrix)
    runbooks: list[Runbook] = Field(default_factory=list)
    oncall: OnCallConfig = Field(default_factory=OnCallConfig)


def load_incident_config(agents_dir: Path) -> IncidentConfig:
    """Everything an incident needs, from `agents_dir/incidents/`."""
    folder = agents_dir / INCIDENTS_DIR
    return IncidentConfig(
        matrix=load_severity_matrix(folder / SEVERITY_FILE),
        runbooks=load_runbooks(folder / RUNBOOKS_FILE),
        oncall=load_oncall(folder / ONCALL_FILE),
    )


def load_severity_matrix(path: Path) -> SeverityMatrix:
    data = _read_toml(path)
    if data is None:
        return SeverityMatrix()
    try:
        return SeverityMatrix.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{path}: {describe_error(err)}") from None


def load_runbooks(path: Path) -> list[Runbook]:
    """The runbooks by name; none when the file is missing."""
    data = _read_toml(path)
    if data is None:
        return []
    try:
        parsed = _RunbooksFile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{path}: {describe_error(err)}") from None
    return [parsed.runbooks[name] for name in sorted(parsed.runbooks)]


def load_oncall(path: Path) -> OnCallConfig:
    data = _read_toml(path)
    if data is None:
        return OnCallConfig()
    try:
        return _OnCallFile.model_validate(data).oncall
    except ValidationError as err:
        raise ConfigError(f"{path}: {describe_error(err)}") from None


def _read_toml(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text: save it as UTF-8") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it: {err.strerror}") from None


# --- one line per error ----------------------------------------------------------------------


def describe_error(err: ValidationError) -> str:
    """The first error as `field: what is wrong (the fix)`."""
    first = err.errors()[0]
    where = _location(first["loc"])
    what = _problem(first)
    return f"{where}: {what}" if where else what


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue  # the key itself was wrong: the location already ends with it
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _problem(error: Mapping[str, Any]) -> str:
    kind, given = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "enum" and "'SEV1'" in str(ctx.get("expected", "")):
        return f"unknown severity {given!r} (one of SEV1..SEV4)"
    if kind in ("enum", "literal_error"):
        return f"unknown value {given!r} (one of {ctx.get('expected', '?')})"
    if kind == "extra_forbidden":
        return "unknown field: remove it or fix its spelling (see agents/incidents/README.md)"
    if kind == "missing":
        return "required: add it"
    message = str(error["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    return f"{message[0].lower()}{message[1:]}, got {_short(given)}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
