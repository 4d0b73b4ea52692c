"""The tool and model activities in a real ActivityEnvironment: idempotency and checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.models.activity import ModelActivities
from activities.models.local import LocalProvider
from activities.tools.activity import ToolActivities
from activities.tools.ledger import Ledger
from activities.tools.registry import ToolRegistry
from activities.tools.support import support_tools
from opsready.settings import PROJECT_ROOT
from tests.fakes.scripted import ScriptedProvider, calls
from workflows.payloads import (
    ChatMessage,
    ModelCallInput,
    ModelChoice,
    ModelPrice,
    RunContext,
    ToolCallInput,
)

DATA = PROJECT_ROOT / "agents" / "data" / "support-triage"


@pytest.fixture
def registry() -> ToolRegistry:
    return ToolRegistry(support_tools(DATA))


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite")


def refund(key: str, amount: float = 10.0) -> ToolCallInput:
    return ToolCallInput(
        run_id="run-1",
        agent="support-triage",
        step=2,
        call_id="c1",
        tool="refund_order",
        arguments={"order_id": "A-1001", "amount_usd": amount, "reason": "broken"},
        idempotency_key=key,
        context=RunContext(user_id="customer-17"),  # the order's customer
    )


async def test_a_retried_refund_is_the_same_refund(registry: ToolRegistry, ledger: Ledger) -> None:
    tools = ToolActivities(registry, ledger)
    env = ActivityEnvironment()
    first = await env.run(tools.run_tool, refund("run-1:2:c1"))
    again = await env.run(tools.run_tool, refund("run-1:2:c1"))
    other = await env.run(tools.run_tool, refund("run-1:3:c1"))
    assert first.ok and not first.was_replayed
    assert again.was_replayed and again.output == first.output
    assert other.output["refund_id"] != first.output["refund_id"]
    assert [r["idempotency_key"] for r in await ledger.refunds()] == ["run-1:2:c1", "run-1:3:c1"]


async def test_refund_ledger_is_keyed_even_without_the_result_cache(ledger: Ledger) -> None:
    # A crash after the refund but before the result was stored: the keyed insert holds.
    one = await ledger.refund_once("k", "R-1", "A-1001", 5.0, "x")
    two = await ledger.refund_once("k", "R-2", "A-1001", 5.0, "x")
    assert one == two and len(await ledger.refunds()) == 1


async def test_tool_errors_and_bad_arguments_come_back_as_results(
    registry: ToolRegistry, ledger: Ledger
) -> None:
    tools = ToolActivities(registry, ledger)
    env = ActivityEnvironment()
    too_much = await env.run(tools.run_tool, refund("k2", amount=500))
    assert not too_much.ok and "more than the order total" in (too_much.error or "")
    bad = refund("k3").model_copy(update={"arguments": {"order_id": "A-1001"}})
    result = await env.run(tools.run_tool, bad)
    assert not result.ok and "amount_usd" in (result.error or "")
    assert await ledger.refunds() == []


async def test_unknown_tool_on_the_worker_is_not_retried(
    registry: ToolRegistry, ledger: Ledger
) -> None:
    call = refund("k").model_copy(update={"tool": "nope"})
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(ToolActivities(registry, ledger).run_tool, call)
    assert err.value.non_retryable and err.value.type == "UnknownTool"


def model_input(provider: str, text: str, tools: list[str], step: int = 1) -> ModelCallInput:
    from activities.config import ConfigActivities
    from opsready.settings import Settings
    from workflows.payloads import ResolveConfigInput

    registry = ToolRegistry(support_tools(DATA))
    config = ConfigActivities(Settings(), registry).resolve(
        ResolveConfigInput(agent="support-triage")
    )
    return ModelCallInput(
        run_id="r",
        agent="support-triage",
        step=step,
        model=ModelChoice(
            model=f"{provider}/support-triage" if provider == "local" else f"{provider}/test",
            price=ModelPrice(input_per_million_usd=1.0, output_per_million_usd=2.0),
        ),
        prompt_version="v1",
        messages=[ChatMessage(role="user", content=text)],
        tools=[t for t in config.tools if t.name in tools],
        max_output_tokens=100,
    )


async def test_model_activity_marks_calls_it_cannot_run(registry: ToolRegistry) -> None:
    scripted = ScriptedProvider(
        {
            "go": lambda r: calls(
                1,
                ("search_kb", {"query": "refund"}),
                ("lookup_order", {"order_id": "bad id"}),
                ("refund_order", {"order_id": "A-1001", "amount_usd": 5, "reason": "x"}),
            )
        }
    )
    models = ModelActivities({"scripted": scripted}, registry)
    result = await ActivityEnvironment().run(
        models.chat, model_input("scripted", "go", ["search_kb", "lookup_order"])
    )
    search, lookup, refund_call = result.message.tool_calls
    assert search.error is None and search.arguments == {"query": "refund"}
    assert "invalid arguments: order_id" in (lookup.error or "")
    assert "unknown tool 'refund_order'" in (refund_call.error or "")  # not enabled here


async def test_unknown_provider_is_not_retried(registry: ToolRegistry) -> None:
    models = ModelActivities({"local": LocalProvider()}, registry)
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(models.chat, model_input("openai", "hi", []))
    assert err.value.non_retryable and "no model provider 'openai'" in str(err.value)


async def test_local_model_searches_and_looks_up_the_order_first() -> None:
    request = model_input("local", "Order A-1002 arrived broken, refund please", ["search_kb"])
    result = await LocalProvider().complete(request)
    assert [c.name for c in result.message.tool_calls] == ["search_kb", "lookup_order"]
    assert result.input_tokens > 0 and result.finish_reason == "tool_calls"
