"""The kill-switch checks the activities make themselves when a run asks them to (the
`lean-run` patch): before the model is called, before a tool runs (its first attempt only:
a retry may follow a call that had its effect), and in the config of a new run. They fail
closed as the check activity does (issue 9): a switch that cannot be read, a check that
raises and a worker without flags are an unknown switch, which refuses a new run and a
destructive tool and is reported back for the run to mark itself `flags_degraded`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.config import ConfigActivities
from activities.models.activity import ModelActivities
from activities.tools.activity import ToolActivities
from activities.tools.ledger import Ledger
from activities.tools.registry import ToolRegistry
from activities.tools.support import support_tools
from opsready.settings import PROJECT_ROOT, Settings
from tests.fakes.scripted import CLOSE_ACCOUNT, ScriptedProvider, answer
from tests.unit.test_tools import model_input, refund
from workflows.contract import kill_switch_key
from workflows.payloads import KillSwitchCheck, ResolveConfigInput, ToolCallInput
from workflows.types import FlagEvaluation, RiskTier

DATA = PROJECT_ROOT / "agents" / "data" / "support-triage"


class Switches:
    """Flags whose only switch on is `on` (a key), as `FlagClient.kill_switch` answers;
    with `state="unknown"` none can be read, with `state="raises"` the check raises."""

    def __init__(self, on: str | None, state: str = "readable") -> None:
        self.on = on
        self.state = state
        self.asked: list[tuple[str, str | None]] = []

    def unavailable(self) -> str | None:
        return None

    def evaluate(self, key: str, context: Any, default: Any) -> FlagEvaluation:
        return FlagEvaluation(key=key, value=default, variation=0, reason="FALLTHROUGH")

    def kill_switch(self, agent: str, tool: str | None, context: Any) -> KillSwitchCheck:
        self.asked.append((agent, tool))
        if self.state == "raises":
            raise RuntimeError("flag store exploded")
        if self.state == "unknown":
            return KillSwitchCheck(is_killed=False, is_unknown=True, reason="kill-switch is 'yes'")
        keys = [kill_switch_key(), kill_switch_key(agent=agent)]
        keys += [kill_switch_key(tool=tool)] if tool else []
        if self.on in keys:
            return KillSwitchCheck(is_killed=True, flag=self.on, reason=f"{self.on} is on")
        return KillSwitchCheck(is_killed=False)


def env_at_attempt(attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env


async def test_the_model_is_not_called_when_the_agent_switch_is_on() -> None:
    scripted = ScriptedProvider({"hi": lambda _: answer("hello")})
    switches = Switches(kill_switch_key(agent="support-triage"))
    models = ModelActivities(
        {"scripted": scripted},
        ToolRegistry(support_tools(DATA)),
        flags=switches,  # type: ignore[arg-type]
    )
    request = model_input("scripted", "hi", []).model_copy(update={"check_kill_switch": True})
    result = await ActivityEnvironment().run(models.chat, request)
    assert result.kill_switch is not None and result.kill_switch.scope == "agent"
    assert scripted.requests == [] and result.input_tokens == result.output_tokens == 0
    # A run recorded before the patch does not ask: the call is made as before.
    unasked = await ActivityEnvironment().run(models.chat, model_input("scripted", "hi", []))
    assert unasked.kill_switch is None and len(scripted.requests) == 1


async def test_a_killed_tool_is_refused_before_it_runs_on_its_first_attempt_only(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    switches = Switches(kill_switch_key(tool="refund_order"))
    tools = ToolActivities(ToolRegistry(support_tools(DATA)), ledger, flags=switches)  # type: ignore[arg-type]
    call = refund("run-1:2:c1").model_copy(update={"check_kill_switch": True})
    refused = await env_at_attempt(1).run(tools.run_tool, call)
    assert not refused.ok and refused.kill_switch is not None
    assert refused.kill_switch.scope == "tool" and await ledger.refunds() == []
    # A retry is not refused: the first attempt may have refunded before it was lost.
    retried = await env_at_attempt(2).run(tools.run_tool, call)
    assert retried.ok and retried.kill_switch is None


async def test_a_new_run_of_a_killed_agent_gets_the_switch_with_its_config() -> None:
    switches = Switches(kill_switch_key())
    config = ConfigActivities(Settings(), ToolRegistry(support_tools(DATA)), switches)  # type: ignore[arg-type]
    asked = config.resolve(ResolveConfigInput(agent="support-triage", check_kill_switch=True))
    assert asked.kill_switch is not None and asked.kill_switch.scope == "global"
    unasked = config.resolve(ResolveConfigInput(agent="support-triage"))
    assert unasked.kill_switch is None
    assert asked.config_hash == unasked.config_hash  # the switch is no part of the config


# --- failing closed -----------------------------------------------------------------------


def close_account(key: str) -> ToolCallInput:
    return ToolCallInput(
        run_id="run-1",
        agent="tester",
        step=2,
        call_id="c1",
        tool="close_account",
        arguments={"account_id": "acct-9"},
        idempotency_key=key,
        risk_tier=RiskTier.DESTRUCTIVE,
        check_kill_switch=True,
    )


async def test_an_unknown_switch_lets_the_model_answer_and_says_so() -> None:
    # A run in flight goes on (new runs were refused by the config); it marks itself.
    scripted = ScriptedProvider({"hi": lambda _: answer("hello")})
    models = ModelActivities(
        {"scripted": scripted},
        ToolRegistry(support_tools(DATA)),
        flags=Switches(None, "unknown"),  # type: ignore[arg-type]
    )
    request = model_input("scripted", "hi", []).model_copy(update={"check_kill_switch": True})
    result = await ActivityEnvironment().run(models.chat, request)
    assert result.message.content == "hello" and len(scripted.requests) == 1
    assert result.kill_switch is not None and result.kill_switch.is_unknown
    assert not result.kill_switch.is_killed


async def test_an_unknown_switch_refuses_a_destructive_tool_and_runs_a_read_only_one(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    registry = ToolRegistry([*support_tools(DATA), CLOSE_ACCOUNT])
    tools = ToolActivities(registry, ledger, flags=Switches(None, "unknown"))  # type: ignore[arg-type]
    refused = await env_at_attempt(1).run(tools.run_tool, close_account("run-1:2:c1"))
    assert not refused.ok and refused.kill_switch is not None and refused.kill_switch.is_unknown
    assert await ledger.effects() == []
    search = ToolCallInput(
        run_id="run-1",
        agent="support-triage",
        step=2,
        call_id="c2",
        tool="search_kb",
        arguments={"query": "refund policy"},
        idempotency_key="run-1:2:c2",
        risk_tier=RiskTier.READ,
        check_kill_switch=True,
    )
    ran = await env_at_attempt(1).run(tools.run_tool, search)
    assert ran.ok and ran.kill_switch is not None and ran.kill_switch.is_unknown


async def test_a_check_that_raises_or_no_flags_at_all_is_an_unchecked_switch(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    registry = ToolRegistry([*support_tools(DATA), CLOSE_ACCOUNT])
    for flags, detail in [
        (Switches(None, "raises"), "RuntimeError: flag store exploded"),
        (None, "no flag client"),
    ]:
        tools = ToolActivities(registry, ledger, flags=flags)  # type: ignore[arg-type]
        refused = await env_at_attempt(1).run(tools.run_tool, close_account("run-1:2:c1"))
        check = refused.kill_switch
        assert not refused.ok and check is not None and check.is_unknown and check.is_unchecked
        assert detail in (check.reason or "")
    assert await ledger.effects() == []


async def test_a_new_run_is_refused_while_its_switches_cannot_be_read() -> None:
    for flags in (Switches(None, "unknown"), Switches(None, "raises")):
        config = ConfigActivities(Settings(), ToolRegistry(support_tools(DATA)), flags)  # type: ignore[arg-type]
        asked = config.resolve(ResolveConfigInput(agent="support-triage", check_kill_switch=True))
        assert asked.kill_switch is not None and asked.kill_switch.is_unknown
        assert not asked.kill_switch.is_killed
