"""Released agent definitions: `agents/versions/<name>/<version>.toml`, exact copies.

Runs record the `version` of the definition they ran; the archive keeps what each version
said, so an operator can diff two versions (text and meaning) and tell when a definition was
edited without bumping its `version` (the current file differs from its archived copy).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from opsready.agents import AgentDefinition, list_agents, load_agent, validate_definition
from opsready.errors import (
    ConfigError,
    OpsreadyError,
    UnknownAgentError,
    UnknownVersionError,
)

VERSIONS_DIR = "versions"
CURRENT = "current"
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class AgentVersions(BaseModel):
    """One agent in `opsready agents list`."""

    agent: str
    current_version: str | None  # None when the current file is invalid
    archived_versions: list[str]
    is_current_archived: bool  # an archived copy of the current version exists
    is_edited_without_bump: bool  # ...and the current file differs from it
    problem: str | None = None  # why the current file could not be read


class Change(BaseModel):
    area: str  # version, model, prompt, tools, budgets, approval, variants, ...
    detail: str


class AgentDiff(BaseModel):
    agent: str
    old: str  # the two sides as asked: a version or "current (1.2.0)"
    new: str
    changes: list[Change]
    unified_diff: str


class Snapshot(BaseModel):
    agent: str
    version: str
    path: Path
    is_new: bool  # False: an identical copy was already there


def archive_dir(agents_dir: Path, agent: str) -> Path:
    return agents_dir / VERSIONS_DIR / agent


def archive_path(agents_dir: Path, agent: str, version: str) -> Path:
    if not _VERSION.match(version):
        raise ConfigError(
            f"version {version!r} of {agent} cannot name an archive file: use letters, "
            "digits, '.', '-', '+' (for example 1.2.0)"
        )
    return archive_dir(agents_dir, agent) / f"{version}.toml"


def archived_versions(agents_dir: Path, agent: str) -> list[str]:
    return sorted((p.stem for p in archive_dir(agents_dir, agent).glob("*.toml")), key=_order)


def _order(version: str) -> list[tuple[int, int | str]]:
    """1.10.0 after 1.9.0: numeric parts compare as numbers."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+-]", version)]


def _known_agents(agents_dir: Path) -> list[str]:
    archived = (p.name for p in (agents_dir / VERSIONS_DIR).glob("*") if p.is_dir())
    return sorted(set(list_agents(agents_dir)) | set(archived))


# --- list -----------------------------------------------------------------------------------


def list_versions(agents_dir: Path) -> list[AgentVersions]:
    return [_versions_of(agents_dir, agent) for agent in _known_agents(agents_dir)]


def _versions_of(agents_dir: Path, agent: str) -> AgentVersions:
    archived = archived_versions(agents_dir, agent)
    try:
        definition, raw = load_agent(agents_dir, agent)
    except OpsreadyError as err:
        return AgentVersions(
            agent=agent,
            current_version=None,
            archived_versions=archived,
            is_current_archived=False,
            is_edited_without_bump=False,
            problem=str(err),
        )
    archive = archive_path(agents_dir, agent, definition.version)
    is_archived = archive.is_file()
    return AgentVersions(
        agent=agent,
        current_version=definition.version,
        archived_versions=archived,
        is_current_archived=is_archived,
        is_edited_without_bump=is_archived and archive.read_bytes() != raw,
    )


# --- snapshot -------------------------------------------------------------------------------


def snapshot(agents_dir: Path, agent: str) -> Snapshot:
    """Copy the current definition to its version's archive file, byte for byte. Refuses to
    replace a different archive of the same version: that version was released as it was."""
    definition, raw = load_agent(agents_dir, agent)
    path = archive_path(agents_dir, agent, definition.version)
    if path.is_file():
        if path.read_bytes() == raw:
            return Snapshot(agent=agent, version=definition.version, path=path, is_new=False)
        raise OpsreadyError(
            f"{path} already holds a different definition of {agent} {definition.version}: "
            f"bump `version` in {agents_dir / f'{agent}.toml'} (to {next_version(definition.version)}, "
            f"say), then run `opsready agents snapshot {agent}` again"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(raw)
    tmp.replace(path)
    return Snapshot(agent=agent, version=definition.version, path=path, is_new=True)


def next_version(version: str) -> str:
    """The version with its last number raised by one (1.0.0 -> 1.0.1), as a suggestion."""
    match = re.search(r"(\d+)(?!.*\d)", version)
    if match is None:
        return f"{version}.1"
    return f"{version[: match.start()]}{int(match.group(1)) + 1}{version[match.end() :]}"


# --- diff -----------------------------------------------------------------------------------


def read_version(agents_dir: Path, agent: str, version: str) -> tuple[str, Path, str]:
    """(label, path, text) of `version` of `agent`: an archived version, or `current`."""
    known = _known_agents(agents_dir)
    if agent not in known:
        raise UnknownAgentError(
            f"unknown agent {agent!r} (known agents: {', '.join(known) or 'none'})"
        )
    archived = ", ".join(archived_versions(agents_dir, agent)) or "none"
    if version == CURRENT:
        if agent not in list_agents(agents_dir):
            raise UnknownVersionError(f"{agent} has no current definition (archived: {archived})")
        definition, raw = load_agent(agents_dir, agent)
        return f"{CURRENT}: {definition.version}", agents_dir / f"{agent}.toml", raw.decode()
    path = archive_path(agents_dir, agent, version) if _VERSION.match(version) else None
    if path is None or not path.is_file():
        raise UnknownVersionError(
            f"unknown version {version!r} of {agent} (archived: {archived}; or {CURRENT})"
        )
    return version, path, path.read_text()


def diff(agents_dir: Path, agent: str, old: str, new: str) -> AgentDiff:
    old_label, old_path, old_text = read_version(agents_dir, agent, old)
    new_label, new_path, new_text = read_version(agents_dir, agent, new)
    before, after = _parse(old_path, old_text, agent), _parse(new_path, new_text, agent)
    for label, definition in ((old, before), (new, after)):
        if label != CURRENT and definition.version != label:
            raise ConfigError(
                f"{archive_path(agents_dir, agent, label)} says version = "
                f"{definition.version!r}: an archive is an exact copy of the version it is named for"
            )
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"{old_path} ({old_label})",
        tofile=f"{new_path} ({new_label})",
    )
    changes = semantic_changes(before, after)
    if not changes and old_text != new_text:
        changes = [Change(area="text", detail="comments or formatting only")]
    if changes and before.version == after.version:
        changes.insert(
            0, Change(area="version", detail=f"still {after.version}: changed without a bump")
        )
    return AgentDiff(
        agent=agent, old=old_label, new=new_label, changes=changes, unified_diff="".join(lines)
    )


def _parse(path: Path, text: str, agent: str) -> AgentDefinition:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    data.setdefault("name", agent)
    return validate_definition(path, data)


def semantic_changes(old: AgentDefinition, new: AgentDefinition) -> list[Change]:
    """What changed between two definitions, in the operator's words, area by area."""
    changes = []
    for field in ("version", "description", "model", "prompt_version", "max_output_tokens"):
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            changes.append(Change(area=field, detail=f"{_show(before)} -> {_show(after)}"))
    changes += _prompt_changes(old, new)
    changes += _table_changes("tools", old.tools, new.tools)
    changes += _fields("budgets", old.budgets, new.budgets)
    changes += _fields("approval", old.approval, new.approval)
    changes += _table_changes("variants", old.variants, new.variants)
    for area in ("fallback_models", "quotas", "breakers", "guardrails", "answer_cache"):
        before, after = getattr(old, area), getattr(new, area)
        if before != after:
            changes.append(
                Change(area=area, detail=f"{_brief_value(before)} -> {_brief_value(after)}")
            )
    return changes


def _brief_value(value: Any) -> str:
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
    return "none" if value is None else _show(value)


def _prompt_changes(old: AgentDefinition, new: AgentDefinition) -> list[Change]:
    changes = []
    for version in sorted(old.prompts.keys() | new.prompts.keys(), key=_order):
        before, after = old.prompts.get(version), new.prompts.get(version)
        if before is None:
            changes.append(Change(area="prompts", detail=f"prompt {version} added"))
        elif after is None:
            changes.append(Change(area="prompts", detail=f"prompt {version} removed"))
        elif before.system != after.system:
            in_use = " (the one in use)" if version == new.prompt_version else ""
            changes.append(Change(area="prompts", detail=f"prompt {version} text changed{in_use}"))
    return changes


def _table_changes(area: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """[tools.X] or [variants.X]: added, removed, or what changed in one."""
    changes = []
    singular = area.removesuffix("s")
    for name in sorted(old.keys() | new.keys()):
        if name not in old:
            changes.append(Change(area=area, detail=f"{singular} {name} added{_brief(new[name])}"))
        elif name not in new:
            changes.append(Change(area=area, detail=f"{singular} {name} removed"))
        else:
            changes += _fields(area, old[name], new[name], prefix=f"{singular} {name}: ")
    return changes


def _fields(area: str, old: BaseModel, new: BaseModel, prefix: str = "") -> list[Change]:
    return [
        Change(area=area, detail=f"{prefix}{field} {_show(before)} -> {_show(after)}")
        for field in type(old).model_fields
        if (before := getattr(old, field)) != (after := getattr(new, field))
    ]


def _brief(entry: BaseModel) -> str:
    """The settings a new tool or variant has beyond the defaults."""
    given = entry.model_dump(exclude_defaults=True)
    return f" ({', '.join(f'{k} {_show(v)}' for k, v in given.items())})" if given else ""


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
