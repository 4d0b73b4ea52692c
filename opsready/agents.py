"""Agent definitions: TOML files in `agents/`, validated by pydantic.

Errors name the file, the field and the fix, because the people who edit these files
are operators, not the authors of this code.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opsready.errors import ConfigError, UnknownAgentError, error_parts
from opsready.guardrails import parse_guardrails
from opsready.slo.definitions import SLO_FILE_SUFFIX, load_slos
from workflows.control_types import BreakerPolicy, GuardrailSet
from workflows.payloads import ApprovalPolicy, Budgets, ModelPrice
from workflows.quota_types import QuotaLimits
from workflows.slo_types import AlertPolicy, Slo

_AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
PRICING_FILE = "pricing.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptDefinition(_Strict):
    system: str = Field(min_length=1)


class ToolPolicy(_Strict):
    """How an agent may use one tool. The tool's risk tier lives with its code."""

    approval: Literal["never", "always", "over_threshold"] = "never"
    threshold_field: str | None = None
    threshold: float | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)
    # Ceilings on numeric arguments for this agent (`limits = { amount_usd = 500 }`),
    # refused by the policy check before any approval is asked.
    limits: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _threshold_complete(self) -> ToolPolicy:
        if self.approval == "over_threshold" and (
            self.threshold_field is None or self.threshold is None
        ):
            raise ValueError('approval = "over_threshold" needs threshold_field and threshold')
        return self


class VariantDefinition(_Strict):
    """A named alternative the `agent-variant` flag can send runs to (canary candidates)."""

    description: str = ""
    prompt_version: str | None = None
    model: str | None = Field(default=None, pattern=r"^[a-z0-9_-]+/.+$")


class QuotaDefinition(_Strict):
    """`[quotas]`: spend and open-run limits across runs, per user, tenant and agent."""

    on_exceeded: Literal["refuse", "require_approval"] = "refuse"
    user: QuotaLimits | None = None
    tenant: QuotaLimits | None = None
    agent: QuotaLimits | None = None


class AnswerCacheDefinition(_Strict):
    """`[answer_cache]`: a read-only agent may repeat an answer to the same question."""

    enabled: bool = False
    ttl_seconds: float = Field(default=3600.0, gt=0)


class AgentDefinition(_Strict):
    name: str
    version: str = Field(min_length=1)
    description: str = ""
    model: str = Field(pattern=r"^[a-z0-9_-]+/.+$", description="provider/model")
    # Tried in order when the model (or the one before) fails for good.
    fallback_models: list[Annotated[str, Field(pattern=r"^[a-z0-9_-]+/.+$")]] = Field(
        default_factory=list
    )
    prompt_version: str
    prompts: dict[str, PromptDefinition]
    max_output_tokens: int = Field(default=1024, gt=0)
    budgets: Budgets = Field(default_factory=Budgets)
    approval: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    tools: dict[str, ToolPolicy] = Field(default_factory=dict)
    variants: dict[str, VariantDefinition] = Field(default_factory=dict)
    # `[slo.<name>]` tables, validated by `load_slos` (its messages name file and field);
    # read them as `Slo`s with `agent_slos`.
    slo: Any = Field(default_factory=dict)
    alerts: AlertPolicy = Field(default_factory=AlertPolicy)
    quotas: QuotaDefinition | None = None
    breakers: BreakerPolicy = Field(default_factory=BreakerPolicy)
    guardrails: GuardrailSet | None = None  # validated by opsready.guardrails (load_agent)
    answer_cache: AnswerCacheDefinition = Field(default_factory=AnswerCacheDefinition)

    @model_validator(mode="after")
    def _prompt_exists(self) -> AgentDefinition:
        known = ", ".join(sorted(self.prompts)) or "none"
        if self.prompt_version not in self.prompts:
            raise ValueError(
                f"prompt_version {self.prompt_version!r} has no [prompts.{self.prompt_version}] "
                f"table (defined: {known})"
            )
        for name, variant in self.variants.items():
            if variant.prompt_version and variant.prompt_version not in self.prompts:
                raise ValueError(
                    f"[variants.{name}] prompt_version {variant.prompt_version!r} has no "
                    f"[prompts.{variant.prompt_version}] table (defined: {known})"
                )
        if "control" in self.variants:
            raise ValueError("[variants.control] is reserved: control is the agent as defined")
        return self


def list_agents(agents_dir: Path) -> list[str]:
    """Every `<agent>.toml` (not the price table, `_` drafts or `<agent>.slo.toml`)."""
    return sorted(
        p.stem
        for p in agents_dir.glob("*.toml")
        if p.name != PRICING_FILE
        and not p.name.startswith("_")
        and not p.name.endswith(SLO_FILE_SUFFIX)
    )


def load_agent(agents_dir: Path, name: str) -> tuple[AgentDefinition, bytes]:
    """The definition and its raw bytes (for the config hash). Its SLOs are checked too:
    nothing runs on a half-read definition."""
    path = _agent_path(agents_dir, name)
    raw = path.read_bytes()
    data = _parse_toml(path, raw)
    if data.get("name", name) != name:
        raise ConfigError(f"{path}: name = {data['name']!r} does not match the file name {name!r}")
    data.setdefault("name", name)
    definition = validate_definition(path, data)
    _slos_of(agents_dir, definition, path)
    return definition, raw


def agent_slos(agents_dir: Path, name: str) -> tuple[AgentDefinition, list[Slo]]:
    """An agent's definition and its SLOs: its `[slo.*]` tables, or those of
    `<agent>.slo.toml` beside it, else the defaults."""
    definition, _ = load_agent(agents_dir, name)
    return definition, _slos_of(agents_dir, definition, _agent_path(agents_dir, name))


def _slos_of(agents_dir: Path, definition: AgentDefinition, path: Path) -> list[Slo]:
    return load_slos(
        {"slo": definition.slo},
        source=path,
        beside=agents_dir / f"{definition.name}{SLO_FILE_SUFFIX}",
    )


def _agent_path(agents_dir: Path, name: str) -> Path:
    if not _AGENT_NAME.match(name):
        raise UnknownAgentError(
            f"invalid agent name {name!r}: use lowercase letters, digits, '-' and '_'"
        )
    path = agents_dir / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(list_agents(agents_dir)) or "none"
        raise UnknownAgentError(f"unknown agent {name!r} (known agents: {known})")
    return path


def validate_definition(path: Path, data: dict[str, Any]) -> AgentDefinition:
    """An agent file's parsed TOML as a definition; errors are one line naming the file
    and the field. `[guardrails]` is checked by the guardrail registry first, which knows
    each check's options (and suggests the nearest name for a typo)."""
    if "guardrails" in data:
        checks = parse_guardrails(data["guardrails"], str(path))
        data = {**data, "guardrails": checks.model_dump()}
    try:
        return AgentDefinition.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{path}: {_first_error(err)}") from None


def load_pricing(agents_dir: Path) -> dict[str, ModelPrice]:
    path = agents_dir / PRICING_FILE
    if not path.is_file():
        raise ConfigError(f"{path} is missing: it prices every model an agent may use")
    data = _parse_toml(path, path.read_bytes())
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f"{path}: [models] must be a table of model names")
    prices: dict[str, ModelPrice] = {}
    for model, entry in models.items():
        try:
            prices[model] = ModelPrice.model_validate(entry)
        except ValidationError as err:
            raise ConfigError(f"{path}: [models.{model!r}] {_first_error(err)}") from None
    return prices


def _parse_toml(path: Path, raw: bytes) -> dict[str, object]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None


def _first_error(err: ValidationError) -> str:
    where, message, kind = error_parts(err)
    if kind == "extra_forbidden":
        message = "unknown field (check the spelling; see agents/README.md)"
    return f"field {where}: {message}" if where else message
