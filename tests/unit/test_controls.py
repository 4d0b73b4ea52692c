"""The controls' configuration and small parts: bad config is one line naming the file and
the field; flags override quotas and fallback chains; tools get only their own secrets;
reservations are never below what a call costs; a rate-limited queue never passes N calls
in a second; `opsready quota` refuses bad input in one line."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio.testing import ActivityEnvironment

from activities.flag_choices import choose
from activities.models.local import LocalProvider
from activities.pacing import Pacer
from activities.tools.activity import ToolActivities
from activities.tools.ledger import Ledger
from activities.tools.registry import Tool, ToolContext, ToolRegistry
from activities.tools.secrets import SecretStore, check_tool_secrets, env_name
from activities.tools.support import support_tools
from opsready.agents import load_agent, load_pricing
from opsready.errors import ConfigError
from opsready.settings import PROJECT_ROOT, Settings
from opsready.waits import rate_limited_name
from starters.cli import main
from tests.conftest import write_agent
from workers.app import build_activities
from workflows.payloads import (
    ChatMessage,
    ModelCallInput,
    ModelChoice,
    RunConfig,
    ToolCallInput,
    ToolSpec,
)
from workflows.policy import price_usage
from workflows.quota_calls import estimate_cost
from workflows.quota_ledger import effective_limits
from workflows.quota_types import QuotaLimits
from workflows.types import FlagEvaluation, RiskTier

AGENT = """
name = "{name}"
version = "1.0.0"
model = "local/support-triage"
prompt_version = "v1"
[prompts.v1]
system = "Help."
[tools.search_kb]
"""


def _flags(**values: object) -> dict[str, FlagEvaluation]:
    return {
        k.replace("_", "-"): FlagEvaluation(key=k.replace("_", "-"), value=v, reason="FALLTHROUGH")
        for k, v in values.items()
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "[quotas.tenant]\nper_day_usd = -5\n",
            "field quotas.tenant.per_day_usd: Input should be greater than or equal to 0",
        ),
        (
            "[guardrails.input.pii_secret]\n",
            "guardrails.input.pii_secret: unknown guardrail (did you mean pii_secrets?)",
        ),
        ('[breakers]\non_tool_open = "panic"\n', "field breakers.on_tool_open: Input should be"),
        (
            '[tools.search_kb.limits]\nmax_results = "ten"\n',
            "field tools.search_kb.limits.max_results",
        ),
    ],
)
def test_bad_control_config_is_one_line_naming_the_file_and_field(
    tmp_path: Path, extra: str, message: str
) -> None:
    write_agent(tmp_path, "bad", AGENT.format(name="bad") + extra)
    with pytest.raises(ConfigError) as refused:
        load_agent(tmp_path, "bad")
    text = str(refused.value)
    assert text.startswith(str(tmp_path / "bad.toml")) and message in text and "\n" not in text


class NoArgs(BaseModel):
    pass


async def _noop(args: NoArgs, ctx: ToolContext) -> dict[str, str]:
    return {}


VAULT = Tool("vault", "Reads the vault.", NoArgs, RiskTier.READ, _noop, secrets=("vault_token",))


def test_a_worker_refuses_to_start_when_an_enabled_tool_lacks_its_secret(tmp_path: Path) -> None:
    write_agent(tmp_path, "keeper", AGENT.format(name="keeper") + "[tools.vault]\n")
    settings = Settings(agents_dir=tmp_path, data_dir=tmp_path / "data")
    with pytest.raises(ConfigError) as refused:
        build_activities(settings, providers={}, tools=[VAULT], secrets=SecretStore({}))
    assert str(refused.value) == (
        f"{tmp_path / 'keeper.toml'}: tools.vault: the tool needs secret 'vault_token'; "
        "set OPSREADY_SECRET_VAULT_TOKEN or add it to OPSREADY_SECRETS_FILE"
    )
    check_tool_secrets(tmp_path, [VAULT], SecretStore({"vault_token": "s3cr3t"}))  # no error


def test_tools_get_only_the_secrets_they_declared(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text('vault_token = "from-file"\nother = "not-yours"\n')
    settings = Settings(secrets_file=path)
    store = SecretStore.load(settings, environ={env_name("vault_token"): "from-env"})
    assert store.for_tool(VAULT) == {"vault_token": "from-env"}  # the variable wins
    assert env_name("payments-api.key") == "OPSREADY_SECRET_PAYMENTS_API_KEY"


def test_flags_override_quotas_field_by_field_and_set_the_fallback_chain() -> None:
    definition, _ = load_agent(PROJECT_ROOT / "agents", "support-triage")
    prices = load_pricing(PROJECT_ROOT / "agents")
    choices = choose(
        definition,
        _flags(
            quotas={"tenant": {"per_day_usd": 3}, "on_exceeded": "require_approval"},
            fallback_model=["openai/gpt-4o-mini", "openai/o9", "openai/gpt-4o"],
        ),
        prices,
    )
    assert choices.quotas.tenant == QuotaLimits(per_day_usd=3)
    assert choices.quotas.on_exceeded == "require_approval"
    assert choices.models == ["local/support-triage", "openai/gpt-4o-mini", "openai/gpt-4o"]
    assert choices.problems == ["flag fallback-model: 'openai/o9' has no price (ignored)"]
    bad = choose(definition, _flags(quotas={"tenant": {"per_day_usd": -1}}), prices)
    assert bad.quotas.tenant is None and bad.problems[0].startswith("flag quotas: ")


def test_an_operators_limits_override_a_runs_own_field_by_field() -> None:
    run = QuotaLimits(per_day_usd=10, max_open_runs=5)
    assert effective_limits(run, QuotaLimits(per_day_usd=1)) == QuotaLimits(
        per_day_usd=1, max_open_runs=5
    )


async def test_a_reservation_is_never_below_what_the_demo_models_call_costs() -> None:
    definition, _ = load_agent(PROJECT_ROOT / "agents", "support-triage")
    price = load_pricing(PROJECT_ROOT / "agents")["local/support-triage"]
    from tests.conftest import WorkerFactory  # noqa: F401  (the project's test helpers load)

    tools = [
        t.spec(definition.tools[t.name])
        for t in support_tools(PROJECT_ROOT / "agents" / "data" / "support-triage")
    ]
    config = RunConfig(
        agent="support-triage",
        agent_version="1",
        config_hash="x",
        prompt_version="v1",
        system_prompt=definition.prompts["v1"].system,
        models=[ModelChoice(model="local/support-triage", price=price)],
        max_output_tokens=definition.max_output_tokens,
        tools=tools,
        budgets=definition.budgets,
        approval=definition.approval,
    )
    messages = [
        ChatMessage(role="system", content=config.system_prompt),
        ChatMessage(role="user", content="My headphones from order A-1002 arrived broken."),
    ]
    request = ModelCallInput(
        run_id="r",
        agent="support-triage",
        step=1,
        model=config.primary,
        prompt_version="v1",
        messages=messages,
        tools=tools,
        max_output_tokens=config.max_output_tokens,
    )
    turn = await LocalProvider().complete(request)
    assert estimate_cost(config, messages) >= price_usage(
        price, turn.input_tokens, turn.output_tokens
    )


async def test_a_rate_limited_queue_never_passes_n_calls_in_any_second() -> None:
    pacer, sent = Pacer({"q.model.openai": 40}), []

    async def one() -> None:
        await pacer.wait("q.model.openai")
        sent.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(60)))
    assert max(sum(1 for t in sent if s <= t < s + 1) for s in sent) <= 40
    assert await pacer.wait("another-queue") == 0.0


def test_a_rate_limited_queue_is_named_for_its_provider_or_tool() -> None:
    assert rate_limited_name("q.model.openai", "q") == "model:openai"
    assert rate_limited_name("q.tool.refund_order", "q") == "tool:refund_order"
    assert rate_limited_name("q", "q") is None and rate_limited_name("other.model.x", "q") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["quota", "show", "team:x"], "write KIND:ID with KIND one of user, tenant, agent"),
        (["quota", "set", "tenant:acme", "--per-day", "-1"], "invalid limits: "),
        (["quota", "set", "tenant:acme"], "give at least one of --per-day"),
    ],
)
def test_quota_commands_refuse_bad_input_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--address", "127.0.0.1:1", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_tool_spec_limits_come_from_the_agent() -> None:
    definition, _ = load_agent(PROJECT_ROOT / "agents", "support-triage")
    assert definition.tools["refund_order"].limits == {"amount_usd": 500}
    assert ToolSpec.model_fields["limits"].default_factory is not None


class EchoArgs(BaseModel):
    service: str


async def _echo_token(args: EchoArgs, ctx: ToolContext) -> dict[str, object]:
    return {
        "service": args.service,
        "token_used": ctx.secrets["vault_token"],
        "all": dict(ctx.secrets),
    }


async def test_a_tool_gets_its_secret_and_the_secret_never_leaves_the_activity(
    tmp_path: Path,
) -> None:
    echo = Tool("echo", "Echo.", EchoArgs, RiskTier.READ, _echo_token, secrets=("vault_token",))
    other = Tool("other", "Other.", EchoArgs, RiskTier.READ, _echo_token)
    store = SecretStore({"vault_token": "t0p-s3cret-value", "db_password": "hunter22"})
    tools = ToolActivities(
        ToolRegistry([echo, other]), Ledger(tmp_path / "l.sqlite"), secrets=store
    )
    call = ToolCallInput(
        run_id="r",
        agent="a",
        step=1,
        call_id="c",
        tool="echo",
        arguments={"service": "vault"},
        idempotency_key="r:1:c",
    )
    result = await ActivityEnvironment().run(tools.run_tool, call)
    assert result.output == {
        "service": "vault",
        "token_used": "[SECRET]",
        "all": {"vault_token": "[SECRET]"},
    }  # it had exactly its own secret, and its result carries none of it
    assert "t0p-s3cret" not in result.model_dump_json() and "hunter22" not in call.model_dump_json()
    other_call = call.model_copy(update={"tool": "other"})
    with pytest.raises(Exception, match="vault_token"):  # no secret declared: none given
        await ActivityEnvironment().run(tools.run_tool, other_call)
