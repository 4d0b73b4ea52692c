"""What each flag opsready reads may serve, checked before a value is written: a value a run
cannot use would only turn into degraded runs later (`activities.flag_choices`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsready.agents import QuotaDefinition, load_pricing
from opsready.errors import ConfigError, FlagChangeError, one_line
from opsready.names import agent_definitions, did_you_mean, known_tools
from workflows import contract
from workflows.payloads import Budgets


class ShadowFlag(BaseModel):
    """The `shadow` flag's value: the candidate a sample of runs also tries in the shadow."""

    model_config = ConfigDict(extra="forbid")

    prompt_version: str | None = None
    model: str | None = None
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)


BUDGET_FIELDS = tuple(Budgets.model_fields)
Check = Callable[[str, Any, Path], None]


def check_flag_value(key: str, value: Any, agents_dir: Path, *, json_error: str | None) -> None:
    """Refuse `value` for flag `key` with one line (FlagChangeError) unless a run can use it.
    `json_error`: why the text did not parse as JSON, when it did not (then `value` is the
    text). Flags opsready does not read take any value."""
    check = _check_of(key)
    if check is None:
        return
    try:
        check(key, value, agents_dir)
    except FlagChangeError as err:
        if json_error:  # it wanted JSON: the parse error is the news, not the type
            raise FlagChangeError(
                f"{key}: {value!r} is not valid JSON ({json_error}); nothing written"
            ) from None
        raise FlagChangeError(f"{err}; nothing written") from None


def _check_of(key: str) -> Check | None:
    if key == contract.KILL_SWITCH or key.startswith(f"{contract.KILL_SWITCH}."):
        return _boolean
    return {
        "agent-variant": _variant,
        "prompt-version": _prompt_version,
        "model": _model,
        "fallback-model": _model,
        "enabled-tools": _enabled_tools,
        "budgets": _budgets,
        "shadow": _shadow,
        "quotas": _quotas,
        contract.PAUSED_AGENTS_FLAG: _paused_agents,
    }.get(key)


def _boolean(key: str, value: Any, agents_dir: Path) -> None:
    if not isinstance(value, bool):
        raise FlagChangeError(f"{key} is a kill switch: it takes true or false, not {_show(value)}")


def _variant(key: str, value: Any, agents_dir: Path) -> None:
    known = ["control", *{v for d in agent_definitions(agents_dir).values() for v in d.variants}]
    _one_of(key, value, known, "a variant name (control or a [variants.NAME] of an agent)")


def _prompt_version(key: str, value: Any, agents_dir: Path) -> None:
    known = sorted({p for d in agent_definitions(agents_dir).values() for p in d.prompts})
    _one_of(key, value, ["", *known], 'a prompt version of an agent, or "" for its own')


def _one_of(key: str, value: Any, known: list[str], what: str) -> None:
    if not isinstance(value, str):
        raise FlagChangeError(f"{key} takes {what}, not {_show(value)}")
    if len(known) > 1 and value not in known:
        shown = ", ".join(repr(k) for k in known)
        raise FlagChangeError(
            f"{key}: no {value!r} in the agents' definitions{did_you_mean(value, known)} "
            f"(known: {shown})"
        )


def _model(key: str, value: Any, agents_dir: Path) -> None:
    if value == "":
        return
    if not isinstance(value, str) or "/" not in value:
        raise FlagChangeError(f'{key} takes "provider/model" or "", not {_show(value)}')
    _priced(key, value, agents_dir)


def _priced(key: str, model: str, agents_dir: Path) -> None:
    try:
        prices = load_pricing(agents_dir)
    except ConfigError:
        return  # no pricing table here to check against (another machine)
    if model not in prices:
        raise FlagChangeError(
            f"{key}: model {model!r} has no price in {agents_dir / 'pricing.toml'}"
            f"{did_you_mean(model, prices)}"
        )


def _enabled_tools(key: str, value: Any, agents_dir: Path) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise FlagChangeError(
            f'{key} takes a JSON list of tool names (["search_kb", ...]) or null, not '
            f"{_show(value)}"
        )
    known = known_tools(agents_dir)
    unknown = [t for t in value if known and t not in known]
    if unknown:
        raise FlagChangeError(
            f"{key}: unknown tool {unknown[0]!r}{did_you_mean(unknown[0], known)} "
            f"(tools: {', '.join(known)})"
        )


def _budgets(key: str, value: Any, agents_dir: Path) -> None:
    fields = ", ".join(BUDGET_FIELDS)
    if not isinstance(value, dict):
        raise FlagChangeError(f"{key} takes a JSON object of {fields}, not {_show(value)}")
    unknown = [name for name in value if name not in BUDGET_FIELDS]
    if unknown:
        raise FlagChangeError(
            f"{key}: no budget {unknown[0]!r}{did_you_mean(unknown[0], BUDGET_FIELDS)} "
            f"(budgets: {fields})"
        )
    try:
        Budgets.model_validate(value)
    except ValidationError as err:
        raise FlagChangeError(f"{key}: {one_line(err)}") from None


def _shadow(key: str, value: Any, agents_dir: Path) -> None:
    if not isinstance(value, dict):
        raise FlagChangeError(
            f'{key} takes a JSON object {{"prompt_version": ..., "model": ..., "sample_rate": '
            f"0..1}} or {{}}, not {_show(value)}"
        )
    try:
        flag = ShadowFlag.model_validate(value)
    except ValidationError as err:
        raise FlagChangeError(f"{key}: {one_line(err)}") from None
    if flag.prompt_version:
        _prompt_version(key, flag.prompt_version, agents_dir)
    if flag.model:
        _model(key, flag.model, agents_dir)


def _quotas(key: str, value: Any, agents_dir: Path) -> None:
    """As `activities.flag_choices` reads it: an object overriding an agent's `[quotas]` per
    scope kind (`user`, `tenant`, `agent`: partial limits) and `on_exceeded`."""
    if value is None or value == {}:
        return
    if not isinstance(value, dict):
        raise FlagChangeError(
            f'{key} takes a JSON object like {{"user": {{"per_day_usd": 5}}, '
            f'"on_exceeded": "refuse"}} or {{}}, not {_show(value)}'
        )
    try:
        QuotaDefinition.model_validate(value)
    except ValidationError as err:
        raise FlagChangeError(f"{key}: {one_line(err)}") from None


def _paused_agents(key: str, value: Any, agents_dir: Path) -> None:
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise FlagChangeError(f"{key} takes a JSON list of agent names, not {_show(value)}")
    known = sorted(agent_definitions(agents_dir))
    unknown = [a for a in value if known and a not in known]
    if unknown:
        raise FlagChangeError(
            f"{key}: unknown agent {unknown[0]!r}{did_you_mean(unknown[0], known)} "
            f"(agents: {', '.join(known)})"
        )


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
