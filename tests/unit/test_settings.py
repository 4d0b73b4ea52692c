"""Settings come from the environment in one place (pydantic-settings), as the README's
table says, and a bad value is one line naming its variable."""

from __future__ import annotations

import re

import pytest

from opsready.errors import ConfigError
from opsready.settings import PROJECT_ROOT, LogSettings, Settings


def _readme_variables() -> set[str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    table = text.split("## Configuration (environment)", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`((?:OPSREADY|LAUNCHDARKLY)_[A-Z_]+)`", table))


def test_the_readme_table_lists_exactly_the_variables_settings_read() -> None:
    read = {Settings.variable(field) for field in Settings.model_fields}
    assert read == _readme_variables()


def test_every_variable_sets_its_field() -> None:
    env = {
        "OPSREADY_TASK_QUEUE": "q",
        "OPSREADY_MODEL": "openai/gpt-x",
        "OPSREADY_MODEL_TIMEOUT_SECONDS": "5",
        "OPSREADY_WORKER_VERSIONING": "false",
        "OPSREADY_REDACT_FIELDS": "customer_name, iban",
        "OPSREADY_LOG_LEVEL": "debug",
        "LAUNCHDARKLY_PROJECT": "shop",
        "LAUNCHDARKLY_SDK_KEY": "sdk-123",
    }
    settings = Settings.from_env(env)
    assert settings.task_queue == "q"
    assert settings.model_override == "openai/gpt-x"
    assert settings.model_timeout_seconds == 5
    assert settings.worker_versioning is False
    assert settings.redact_fields == ["customer_name", "iban"]
    assert settings.log_level == "DEBUG"
    assert settings.launchdarkly_project == "shop"
    assert settings.launchdarkly_sdk_key is not None
    assert settings.launchdarkly_sdk_key.get_secret_value() == "sdk-123"


def test_openai_api_key_falls_back_to_the_standard_variable() -> None:
    fallback = Settings.from_env({"OPENAI_API_KEY": "sk-standard"}).openai_api_key
    assert fallback is not None and fallback.get_secret_value() == "sk-standard"
    both = {"OPENAI_API_KEY": "sk-standard", "OPSREADY_OPENAI_API_KEY": "sk-ours"}
    ours = Settings.from_env(both).openai_api_key
    assert ours is not None and ours.get_secret_value() == "sk-ours"


def test_blank_variables_count_as_unset() -> None:
    settings = Settings.from_env({"OPSREADY_DATA_DIR": "  ", "OPSREADY_METRICS_PORT": ""})
    assert settings.data_dir == Settings().data_dir
    assert settings.metrics_port is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPSREADY_MODEL_TIMEOUT_SECONDS", "-1"),
        ("OPSREADY_METRICS_PORT", "http"),
        ("OPSREADY_WORKER_VERSIONING", "maybe"),
        ("OPSREADY_LOG_LEVEL", "loud"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message


def test_explicit_settings_never_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSREADY_TASK_QUEUE", "from-the-shell")
    monkeypatch.setenv("OPSREADY_MODEL", "openai/from-the-shell")
    assert Settings(data_dir=PROJECT_ROOT).task_queue == Settings.model_fields["task_queue"].default
    assert Settings().model_override is None
    assert Settings.from_env().task_queue == "from-the-shell"


def test_logging_reads_only_its_own_variables() -> None:
    # A bad worker setting must not stop the CLI from setting up logging first.
    settings = LogSettings.from_env({"OPSREADY_METRICS_PORT": "http", "OPSREADY_DEBUG": "1"})
    assert settings.debug is True
