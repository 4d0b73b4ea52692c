"""Typed settings, read from the environment in this one place.

Temporal connection settings (address, namespace, API key, TLS) come from
`temporalio.envconfig` (TEMPORAL_* variables or a profile file); everything else opsready
reads is here, with its variable name and default. The README lists them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, ValidationError

from opsready.errors import ConfigError, error_parts
from workflows.contract import DEFAULT_TASK_QUEUE

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# env variable -> field name
_ENV: dict[str, str] = {
    "OPSREADY_TASK_QUEUE": "task_queue",
    "OPSREADY_AGENTS_DIR": "agents_dir",
    "OPSREADY_DATA_DIR": "data_dir",
    "OPSREADY_MODEL": "model_override",
    "OPSREADY_OPENAI_BASE_URL": "openai_base_url",
    "OPSREADY_OPENAI_API_KEY": "openai_api_key",
    "OPSREADY_MODEL_TIMEOUT_SECONDS": "model_timeout_seconds",
    "OPSREADY_APPROVAL_WEBHOOK_URL": "approval_webhook_url",
    "OPSREADY_MAX_CACHED_WORKFLOWS": "max_cached_workflows",
    "OPSREADY_MAX_CONCURRENT_ACTIVITIES": "max_concurrent_activities",
    "OPSREADY_TEMPORAL_BIN": "temporal_bin",
    "OPSREADY_UI_URL": "ui_url",
    "OPSREADY_METRICS_PORT": "metrics_port",
    "LAUNCHDARKLY_SDK_KEY": "launchdarkly_sdk_key",
    "OPSREADY_FLAGS_FILE": "flags_file",
    "OPSREADY_FLAGS_POLL_SECONDS": "flags_poll_seconds",
    "OPSREADY_FLAGS_START_WAIT_SECONDS": "flags_start_wait_seconds",
    "LAUNCHDARKLY_BASE_URI": "launchdarkly_base_uri",
    "LAUNCHDARKLY_API_TOKEN": "launchdarkly_api_token",
    "LAUNCHDARKLY_API_URL": "launchdarkly_api_url",
    "LAUNCHDARKLY_PROJECT": "launchdarkly_project",
    "LAUNCHDARKLY_ENVIRONMENT": "launchdarkly_environment",
    "OPSREADY_DEPLOYMENT_NAME": "deployment_name",
    "OPSREADY_BUILD_ID": "build_id",
    "OPSREADY_WORKER_VERSIONING": "worker_versioning",
}


class Settings(BaseModel):
    task_queue: str = DEFAULT_TASK_QUEUE
    agents_dir: Path = PROJECT_ROOT / "agents"
    data_dir: Path = Path(".opsready")
    model_override: str | None = Field(
        default=None, description="provider/model used instead of each agent's model"
    )
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr | None = None
    model_timeout_seconds: float = Field(default=60.0, gt=0)
    approval_webhook_url: str | None = None
    max_cached_workflows: int = Field(default=1000, ge=10)
    max_concurrent_activities: int = Field(default=100, ge=1)
    temporal_bin: str | None = None
    ui_url: str = "http://localhost:8233"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Flags: LaunchDarkly with an SDK key, else the local file through the SDK's file source.
    launchdarkly_sdk_key: SecretStr | None = None
    flags_file: Path = PROJECT_ROOT / "temporal-dev" / "flags.json"
    flags_poll_seconds: float = Field(default=0.2, gt=0, le=60)
    flags_start_wait_seconds: float = Field(default=5.0, ge=0, le=60)
    launchdarkly_base_uri: str | None = None  # a Relay Proxy, for example
    # The LaunchDarkly REST API, for `opsready flags` and rollouts when a token is set.
    launchdarkly_api_token: SecretStr | None = None
    launchdarkly_api_url: str = "https://app.launchdarkly.com"
    launchdarkly_project: str = "default"
    launchdarkly_environment: str = "production"
    # Worker Deployment Versioning.
    deployment_name: str = "opsready"
    build_id: str | None = None
    worker_versioning: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, str] = {
            field: env[var] for var, field in _ENV.items() if env.get(var, "").strip()
        }
        if "openai_api_key" not in values and env.get("OPENAI_API_KEY"):
            values["openai_api_key"] = env["OPENAI_API_KEY"]
        try:
            return cls.model_validate(values)
        except ValidationError as err:
            where, message, _ = error_parts(err)
            field = where.split(".")[0] or "?"
            var = next((v for v, f in _ENV.items() if f == field), field)
            raise ConfigError(f"{var}: {message}") from None

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
