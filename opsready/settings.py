"""Typed settings, read from the environment in this one place (pydantic-settings).

Every field is the variable `OPSREADY_<FIELD>` unless it names its own (the LaunchDarkly
variables, `OPSREADY_MODEL`, `OPENAI_API_KEY` as a fallback); the README lists them.
Temporal connection settings (address, namespace, API key, TLS) come from
`temporalio.envconfig` (TEMPORAL_* variables or a profile file), OpenTelemetry's from its
own OTEL_* variables. `Settings.from_env()` reads the environment; `Settings(...)` is only
what it is given, so tests and tools never pick up a developer's shell by accident.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from opsready.errors import ConfigError, error_parts
from workflows.breaker_types import BreakerConfig
from workflows.contract import DEFAULT_TASK_QUEUE
from workflows.redaction import UserAttribute

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The flags opsready ships with. Never written: commands and workers use a working copy.
SHIPPED_FLAGS_FILE = PROJECT_ROOT / "temporal-dev" / "flags.json"
FLAGS_FILE_NAME = "flags.json"
ENV_PREFIX = "OPSREADY_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class _Environment(EnvSettingsSource):
    """The process environment or a given mapping; blank values count as unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items() if value.strip()}


class _EnvSettings(BaseSettings):
    """Settings read by `from_env` only: explicit construction never reads the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, populate_by_name=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """The settings from `env` (default: the process environment); a bad value is a
        ConfigError naming its variable."""
        values = _Environment(cls, os.environ if env is None else env)()
        try:
            return cls(**values)
        except ValidationError as err:
            where, message, _ = error_parts(err)
            raise ConfigError(f"{cls.variable(where.split('.')[0])}: {message}") from None

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of a field (or of an alias an error names)."""
        info: FieldInfo | None = cls.model_fields.get(field)
        if info is None:
            return field.upper() or "?"
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            alias = alias.choices[0]
        return alias if isinstance(alias, str) else f"{ENV_PREFIX}{field.upper()}"


class LogSettings(_EnvSettings):
    """What logging needs before anything else is read (opsready.logs, opsready.redaction)."""

    log_format: str | None = Field(default=None, description="json or console; else by terminal")
    log_level: LogLevel = "INFO"
    log_content: bool = Field(default=False, description="log prompts and completions")
    redact_fields: Annotated[list[str], NoDecode] = Field(default_factory=list)
    debug: bool = Field(default=False, description="tracebacks for internal errors")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("redact_fields", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


class Settings(LogSettings):
    task_queue: str = DEFAULT_TASK_QUEUE
    agents_dir: Path = PROJECT_ROOT / "agents"
    data_dir: Path = Path(".opsready")
    model_override: str | None = Field(
        default=None,
        validation_alias="OPSREADY_MODEL",
        description="provider/model used instead of each agent's model",
    )
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPSREADY_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    model_timeout_seconds: float = Field(default=60.0, gt=0)
    # A model with a fallback after it gives way after this many failed attempts, or this
    # many seconds of failing, whichever comes first (the last model: the full retry policy).
    model_fallback_after_attempts: int = Field(default=3, ge=1)
    model_fallback_after_seconds: float = Field(default=5.0, gt=0)
    # How AgentUser (and the start memo) show a run's user id: `pseudonym` hashes ids that
    # look like personal data (an e-mail address, a phone number...), `hash` every id,
    # `raw` none.
    user_attribute: UserAttribute = "pseudonym"
    approval_webhook_url: str | None = None
    # Incidents: where pages go (none: a log line), and where evidence and postmortems stay.
    pager_url: str | None = None
    pager_format: Literal["pagerduty", "slack", "json"] = "json"
    pager_routing_key: SecretStr | None = None  # PagerDuty's integration key
    pager_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    evidence_dir: Path | None = Field(default=None, description="default: DATA_DIR/incidents")
    max_cached_workflows: int = Field(default=1000, ge=10)
    max_concurrent_activities: int = Field(default=100, ge=1)
    # Workflow tasks one worker works on at once; None: eight per core it may run on
    # (workers.app.worker_limits; docs/decisions.md, "Worker slots").
    max_concurrent_workflow_tasks: int | None = Field(default=None, ge=2)
    temporal_bin: str | None = None
    ui_url: str = "http://localhost:8233"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Flags: LaunchDarkly with an SDK key, else the local file through the SDK's file source.
    launchdarkly_sdk_key: SecretStr | None = Field(
        default=None, validation_alias="LAUNCHDARKLY_SDK_KEY"
    )
    # The working copy under the data dir, seeded from SHIPPED_FLAGS_FILE on first use
    # (opsready.flags.working_copy), so flipping a flag never touches a tracked file.
    flags_file: Path = Field(default_factory=lambda data: Path(data["data_dir"]) / FLAGS_FILE_NAME)
    flags_poll_seconds: float = Field(default=0.2, gt=0, le=60)
    flags_start_wait_seconds: float = Field(default=5.0, ge=0, le=60)
    launchdarkly_base_uri: str | None = Field(  # a Relay Proxy, for example
        default=None, validation_alias="LAUNCHDARKLY_BASE_URI"
    )
    # The LaunchDarkly REST API, for `opsready flags` and rollouts when a token is set.
    launchdarkly_api_token: SecretStr | None = Field(
        default=None, validation_alias="LAUNCHDARKLY_API_TOKEN"
    )
    launchdarkly_api_url: str = Field(
        default="https://app.launchdarkly.com", validation_alias="LAUNCHDARKLY_API_URL"
    )
    launchdarkly_project: str = Field(default="default", validation_alias="LAUNCHDARKLY_PROJECT")
    launchdarkly_environment: str = Field(
        default="production", validation_alias="LAUNCHDARKLY_ENVIRONMENT"
    )
    # Worker Deployment Versioning.
    deployment_name: str = "opsready"
    build_id: str | None = None
    worker_versioning: bool = True
    # Controls across runs (docs/controls.md). Calls per second per provider or tool
    # (`{"model:openai": 5, "tool:refund_order": 2}`), each on a task queue of its own.
    rate_limits: dict[str, float] = Field(default_factory=dict)
    breakers: bool = Field(default=False, description="circuit breakers per provider and tool")
    breaker_config: BreakerConfig = Field(default_factory=BreakerConfig)
    ledger: Literal["sqlite", "temporal"] = "sqlite"  # where side effects are recorded
    secrets_file: Path | None = None  # NAME = "value" lines (TOML) for tools' secrets

    @field_validator("rate_limits")
    @classmethod
    def _rate_limit_names(cls, value: dict[str, float]) -> dict[str, float]:
        for name, rate in value.items():
            kind, _, target = name.partition(":")
            if kind not in ("model", "tool") or not target:
                raise ValueError(f"{name!r}: use model:<provider> or tool:<name>")
            if rate <= 0:
                raise ValueError(f"{name!r}: calls per second must be above 0")
        return value

    @property
    def incidents_dir(self) -> Path:
        """Where evidence bundles and postmortem drafts are written: shared storage when
        workers run on several hosts (OPSREADY_EVIDENCE_DIR)."""
        return self.evidence_dir or self.data_dir / "incidents"

    @property
    def is_default_flags_file(self) -> bool:
        """Is the flag file the data dir's working copy (seeded when missing)?"""
        return self.flags_file == self.data_dir / FLAGS_FILE_NAME

    def temporal_binary(self) -> str:
        """Path of the `temporal` CLI: the setting, the one beside this Python, or PATH."""
        if self.temporal_bin:
            return self.temporal_bin
        beside = Path(sys.executable).parent / "temporal"
        if beside.exists():
            return str(beside)
        found = shutil.which("temporal")
        if not found:
            raise ConfigError(
                "the temporal CLI was not found: run `make install` or set OPSREADY_TEMPORAL_BIN"
            )
        return found
