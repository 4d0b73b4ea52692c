"""The kill-switch checks the activities make themselves when a run asks them to (the
`lean-run` patch): before the model is called, before a tool runs (its first attempt only:
a retry may follow a call that had its effect), and in the config of a new run."""

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
from tests.fakes.scripted import ScriptedProvider, answer
from tests.unit.test_tools import model_input, refund
from workflows.contract import kill_switch_key
from workflows.payloads import KillSwitchCheck, ResolveConfigInput
from workflows.types import FlagEvaluation

DATA = PROJECT_ROOT / "agents" / "data" / "support-triage"


class Switches:
    """Flags whose only switch on is `on` (a key), as `FlagClient.kill_switch` answers."""

    def __init__(self, on: str | None) -> None:
        self.on = on
        self.asked: list[tuple[str, str | None]] = []

    def evaluate(self, key: str, context: Any, default: Any) -> FlagEvaluation:
        return FlagEvaluation(key=key, value=default, variation=0, reason="FALLTHROUGH")

    def kill_switch(self, agent: str, tool: str | None, context: Any) -> KillSwitchCheck:
        self.asked.append((agent, tool))
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
