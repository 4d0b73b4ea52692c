"""Agent definitions and config resolution: errors name the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.config import ConfigActivities
from activities.tools.registry import ToolRegistry
from activities.tools.support import support_tools
from opsready.agents import list_agents, load_agent
from opsready.errors import ConfigError, UnknownAgentError
from opsready.settings import PROJECT_ROOT, Settings
from tests.conftest import write_agent
from workflows.payloads import ResolveConfigInput
from workflows.types import RiskTier

GOOD = """
name = "helper"
version = "1.2.0"
model = "openai/gpt-4o-mini"
prompt_version = "v1"
[prompts.v1]
system = "Be helpful."
[tools.refund_order]
approval = "over_threshold"
threshold_field = "amount_usd"
threshold = 10
"""


def resolver(agents_dir: Path, **settings: object) -> ConfigActivities:
    registry = ToolRegistry(support_tools(PROJECT_ROOT / "agents" / "data" / "support-triage"))
    return ConfigActivities(Settings(agents_dir=agents_dir, **settings), registry)  # type: ignore[arg-type]


def test_the_shipped_demo_agent_resolves() -> None:
    config = resolver(PROJECT_ROOT / "agents").resolve(ResolveConfigInput(agent="support-triage"))
    assert [m.model for m in config.models] == ["local/support-triage"]
    assert (config.primary.provider, config.primary.name) == ("local", "support-triage")
    assert config.prompt_version == "v1"
    assert {t.name: t.risk_tier for t in config.tools} == {
        "search_kb": RiskTier.READ,
        "lookup_order": RiskTier.READ,
        "refund_order": RiskTier.WRITE,
    }
    assert len(config.config_hash) == 16
    assert list_agents(PROJECT_ROOT / "agents") == ["support-triage"]


def test_config_hash_changes_with_the_definition(tmp_path: Path) -> None:
    write_agent(tmp_path, "helper", GOOD)
    first = resolver(tmp_path).resolve(ResolveConfigInput(agent="helper"))
    write_agent(tmp_path, "helper", GOOD.replace("Be helpful.", "Be brief."))
    second = resolver(tmp_path).resolve(ResolveConfigInput(agent="helper"))
    assert first.config_hash != second.config_hash
    assert first.tools[0].approval.threshold == 10


def test_model_override_from_settings_and_its_price(tmp_path: Path) -> None:
    write_agent(tmp_path, "helper", GOOD)
    config = resolver(tmp_path, model_override="openai/gpt-4o").resolve(
        ResolveConfigInput(agent="helper")
    )
    assert config.primary.model == "openai/gpt-4o"
    assert config.primary.price.input_per_million_usd == 2.5
    with pytest.raises(ConfigError, match="no price for model 'openai/o9'"):
        resolver(tmp_path, model_override="openai/o9").resolve(ResolveConfigInput(agent="helper"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('prompt_version = "v1"', 'prompt_version = "v3"'),
            "prompt_version 'v3' has no [prompts.v3]",
        ),
        (('version = "1.2.0"', 'version = "1.2.0"\ncolour = "red"'), "field colour: unknown field"),
        (("threshold = 10", ""), "needs threshold_field and threshold"),
        (('model = "openai/gpt-4o-mini"', 'model = "gpt"'), "field model"),
        (
            ("[tools.refund_order]", "[tools.launch_rockets]\n[tools.refund_order]"),
            "[tools.launch_rockets] names no registered tool",
        ),
        (("[prompts.v1]", "[prompts.v1"), "not valid TOML"),
    ],
)
def test_bad_definitions_name_file_field_and_fix(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    write_agent(tmp_path, "helper", GOOD.replace(*change))
    with pytest.raises(ConfigError) as err:
        resolver(tmp_path).resolve(ResolveConfigInput(agent="helper"))
    assert str(tmp_path / "helper.toml") in str(err.value) or "pricing" in str(err.value)
    assert message in str(err.value)


def test_unknown_and_malformed_agent_names(tmp_path: Path) -> None:
    write_agent(tmp_path, "helper", GOOD)
    with pytest.raises(UnknownAgentError, match=r"unknown agent 'nope' \(known agents: helper\)"):
        load_agent(tmp_path, "nope")
    with pytest.raises(UnknownAgentError, match="invalid agent name"):
        load_agent(tmp_path, "../etc/passwd")
