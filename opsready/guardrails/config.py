"""Which guardrails an agent runs: the registry of checks and the `[guardrails]` TOML table.

An agent file lists checks per stage, in the order they run, each with its options:

    [guardrails.input.pii_secrets]
    action = "mask"

    [guardrails.output.refund_grounding]   # defaults: refund_order vs lookup_order totals

`name = true` enables a check with its defaults, `name = false` leaves it out. Unknown
stages, checks and options are refused with one line naming the file, the field and the
nearest known name.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opsready.errors import ConfigError
from opsready.guardrails.base import Guardrail, Stage
from opsready.guardrails.input_checks import (
    PiiSecrets,
    PiiSecretsOptions,
    PromptInjection,
    PromptInjectionOptions,
    SizeLimit,
    SizeLimitOptions,
)
from opsready.guardrails.output_checks import (
    ForbiddenContent,
    ForbiddenContentOptions,
    JsonSchema,
    JsonSchemaOptions,
    Leak,
    LeakOptions,
    RefundGrounding,
    RefundGroundingOptions,
)


@dataclass(frozen=True)
class GuardrailSpec:
    """A check the registry can build: its name, stage, options model and constructor."""

    name: str
    stage: Stage
    options: type[BaseModel]
    build: Callable[[Any], Guardrail]


REGISTRY: dict[str, GuardrailSpec] = {}


def register(spec: GuardrailSpec) -> None:
    """Add a check (built-in or custom) so agent files can name it."""
    REGISTRY[spec.name] = spec


for _spec in (
    GuardrailSpec("size_limit", "input", SizeLimitOptions, SizeLimit),
    GuardrailSpec("prompt_injection", "input", PromptInjectionOptions, PromptInjection),
    GuardrailSpec("pii_secrets", "input", PiiSecretsOptions, PiiSecrets),
    GuardrailSpec("json_schema", "output", JsonSchemaOptions, JsonSchema),
    GuardrailSpec("forbidden_content", "output", ForbiddenContentOptions, ForbiddenContent),
    GuardrailSpec("leak", "output", LeakOptions, Leak),
    GuardrailSpec("refund_grounding", "output", RefundGroundingOptions, RefundGrounding),
):
    register(_spec)


class GuardrailConfig(BaseModel):
    """An agent's checks per stage, in run order, with their validated options.

    Plain data (check name -> options), so it can travel in a run's resolved config and
    be recorded in history; `build` turns it into the checks themselves.
    """

    model_config = ConfigDict(extra="forbid")

    input: dict[str, dict[str, Any]] = Field(default_factory=dict)
    output: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def build(self, stage: Stage) -> list[Guardrail]:
        chosen = self.input if stage == "input" else self.output
        return [
            REGISTRY[name].build(REGISTRY[name].options.model_validate(options))
            for name, options in chosen.items()
        ]


def default_guardrails() -> GuardrailConfig:
    """A sensible set for an agent that declares none: size, injection, secrets, leaks."""
    return parse_guardrails(
        {
            "input": {"size_limit": True, "prompt_injection": True, "pii_secrets": True},
            "output": {"leak": True},
        },
        "defaults",
    )


def load_guardrails(path: Path) -> GuardrailConfig:
    """The `[guardrails]` table of an agent file (empty when it has none)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_guardrails(data.get("guardrails"), str(path))


def parse_guardrails(table: Mapping[str, Any] | None, source: str) -> GuardrailConfig:
    """Validate a `[guardrails]` table; `source` (the file) starts every error message."""
    if table is None:
        return GuardrailConfig()
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: guardrails: must be a table ([guardrails.input.NAME])")
    stages: dict[str, dict[str, dict[str, Any]]] = {"input": {}, "output": {}}
    for stage_name, checks in table.items():
        where = f"guardrails.{stage_name}"
        if stage_name not in stages:
            raise ConfigError(
                f"{source}: {where}: unknown stage{_did_you_mean(stage_name, get_args(Stage))}"
            )
        if not isinstance(checks, Mapping):
            raise ConfigError(f"{source}: {where}: must be a table of checks ([{where}.NAME])")
        for name, options in checks.items():
            parsed = _parse_check(source, stage_name, str(name), options)
            if parsed is not None:
                stages[stage_name][str(name)] = parsed
    return GuardrailConfig(input=stages["input"], output=stages["output"])


def _parse_check(source: str, stage: str, name: str, options: Any) -> dict[str, Any] | None:
    where = f"guardrails.{stage}.{name}"
    spec = REGISTRY.get(name)
    if spec is None:
        known = [n for n, s in REGISTRY.items() if s.stage == stage]
        raise ConfigError(f"{source}: {where}: unknown guardrail{_did_you_mean(name, known)}")
    if spec.stage != stage:
        raise ConfigError(
            f"{source}: {where}: {name} is an {spec.stage} guardrail "
            f"(move it to [guardrails.{spec.stage}.{name}])"
        )
    if options is False:
        return None
    if options is True:
        options = {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{source}: {where}: must be a table of options, true or false")
    try:
        validated = spec.options.model_validate(dict(options))
    except ValidationError as err:
        raise ConfigError(f"{source}: {_first_error(where, spec.options, err)}") from None
    return validated.model_dump(mode="json", by_alias=True)


def _first_error(where: str, options: type[BaseModel], err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    at = f"{where}.{field}" if field else where
    if first["type"] == "extra_forbidden":
        known = [f.alias or n for n, f in options.model_fields.items()]
        return f"{at}: unknown option{_did_you_mean(str(first['loc'][-1]), known)}"
    return f"{at}: {first['msg'].removeprefix('Value error, ')}"


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    candidates = sorted(known)
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (known: {', '.join(candidates)})"
