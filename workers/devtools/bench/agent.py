"""The agent the benches run: `bench`, on the deterministic local provider, calling a
trivial read tool K times (K from the message) and answering, or calling one tool that
always needs an approval (`park`). Its definition is written to a scratch agents dir."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pydantic import BaseModel

from activities.models.local import LocalProvider
from activities.tools.registry import Tool, ToolContext
from opsready.settings import PROJECT_ROOT
from workflows.payloads import ChatMessage, ModelCallInput, ToolCallRequest
from workflows.types import RiskTier

AGENT = "bench"
APPROVER = "alice"
ECHO, GATED = "echo", "gated_echo"
PARK = "park: call gated_echo once"
AGENT_TOML = f"""
name = "{AGENT}"
version = "1.0.0"
description = "Benchmark only: calls a trivial tool K times, then answers."
model = "local/{AGENT}"
prompt_version = "v1"

[prompts.v1]
system = "Call {ECHO} as many times as the user asks, then answer."

[budgets]
max_steps = 500
max_total_tokens = 100000000
max_cost_usd = 1000.0
continue_as_new_after_events = 50000

[approval]
approvers = ["{APPROVER}"]
timeout_seconds = 86400
escalation_timeout_seconds = 86400

[tools.{ECHO}]

[tools.{GATED}]
approval = "always"
"""
PRICE = f"""
[models."local/{AGENT}"]
input_per_million_usd = 0.15
output_per_million_usd = 0.60
"""
_TIMES = re.compile(r"(\d+) times")


def message(tool_calls: int) -> str:
    """The user message that makes the bench agent call `echo` this many times."""
    return f"call echo {tool_calls} times"


class EchoArgs(BaseModel):
    text: str


async def _echo(args: EchoArgs, ctx: ToolContext) -> dict[str, str]:
    return {"echo": args.text}


def tools() -> list[Tool]:
    return [
        Tool(ECHO, "Echoes its text.", EchoArgs, RiskTier.READ, _echo),
        Tool(GATED, "Echoes its text, after an approval.", EchoArgs, RiskTier.WRITE, _echo),
    ]


def script(request: ModelCallInput) -> ChatMessage:
    done = sum(1 for m in request.messages if m.role == "tool")
    text = next(m.content or "" for m in request.messages if m.role == "user")
    wanted = 1 if text == PARK else int(_TIMES.search(text).group(1))  # type: ignore[union-attr]
    if done >= wanted:
        return ChatMessage(role="assistant", content=f"done after {done} tool calls")
    tool = GATED if text == PARK else ECHO
    call = ToolCallRequest(id=f"call_{done + 1}", name=tool, arguments={"text": str(done)})
    return ChatMessage(role="assistant", tool_calls=[call])


def provider() -> LocalProvider:
    return LocalProvider({AGENT: script})


def write_agents_dir(root: Path) -> Path:
    """A scratch agents dir with the bench agent and the shipped price table (plus its own)."""
    agents = root / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    (agents / f"{AGENT}.toml").write_text(AGENT_TOML)
    shutil.copy(PROJECT_ROOT / "agents" / "pricing.toml", agents / "pricing.toml")
    with (agents / "pricing.toml").open("a") as pricing:
        pricing.write(PRICE)
    return agents
