"""Flags in charge of runs, on the time-skipping server: choices recorded in history,
fail-safe defaults when flags cannot be evaluated, kill switches checked before each call.
Shadow runs are tested on the dev server (tests/integration/test_shadow_report.py): after
a run starts a child and signals it, the time-skipping server stops skipping time."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.flags import FlagClient, evaluation_context
from activities.models.local import LocalProvider
from activities.tools.ledger import Ledger
from opsready.runs import run_result
from opsready.settings import PROJECT_ROOT, SHIPPED_FLAGS_FILE, Settings
from tests.conftest import write_agent
from tests.fakes.scripted import ScriptedProvider, answer, calls, only_on
from tests.workflows.conftest import TESTER, harness_tools
from workers.app import WORKFLOWS, build_activities, build_worker
from workflows.contract import Query
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    FlagEvaluation,
    RunStatus,
    StopReason,
)

SMALL_REFUND = "My mug from order A-1001 arrived broken, please refund it"
FLAGS = SHIPPED_FLAGS_FILE

VARIANTS = """
[prompts.v3]
system = "You are the candidate test agent."

[variants.candidate]
prompt_version = "v3"
"""


def write_flags(path: Path, change: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Rewrite the flag file the way `opsready flags` does: changed, version bumped, atomic."""
    data = json.loads((path if path.exists() else FLAGS).read_text())
    if change is not None:
        change(data["flags"])
        for flag in data["flags"].values():
            flag["version"] += 1
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def serve(variation: int, *keys: str) -> Callable[[dict[str, Any]], None]:
    def change(flags: dict[str, Any]) -> None:
        for key in keys:
            flags[key]["fallthrough"] = {"variation": variation}

    return change


def set_value(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(flags: dict[str, Any]) -> None:
        flags[key]["variations"] = [value]
        flags[key]["fallthrough"] = {"variation": 0}

    return change


@dataclass
class FlagRig:
    client: Client
    settings: Settings
    flags: FlagClient
    scripted: ScriptedProvider
    ledger: Ledger

    async def run(self, agent: str, text: str) -> tuple[str, AgentRunResult]:
        run_id = f"flags-{agent}-{uuid.uuid4().hex[:8]}"
        handle = await self.client.start_workflow(
            "AgentRun",
            AgentRunRequest(agent=agent, input=text, user_id="customer-17"),
            id=run_id,
            task_queue=self.settings.task_queue,
            result_type=AgentRunResult,
        )
        return run_id, await run_result(handle)

    async def until_flag(self, key: str, value: Any, timeout: float = 10) -> None:
        """Wait until the flag client has read the file's new value (it polls the file)."""
        await self.until(lambda flag: flag.value == value and flag.error is None, key, timeout)

    async def until_missing(self, key: str, timeout: float = 10) -> None:
        """Wait until the flag client has read a file without `key`."""
        await self.until(lambda flag: flag.error == "FLAG_NOT_FOUND", key, timeout)

    async def until(
        self, holds: Callable[[FlagEvaluation], bool], key: str, timeout: float
    ) -> None:
        context = evaluation_context("tester")
        async with asyncio.timeout(timeout):
            while True:
                if holds(self.flags.evaluate(key, context, None)):
                    return
                await asyncio.sleep(0.02)


@asynccontextmanager
async def flag_rig(
    env: WorkflowEnvironment, root: Path, *, flags: FlagClient | None = None, **settings: Any
) -> AsyncIterator[FlagRig]:
    agents_dir = root / "agents"
    write_agent(
        agents_dir,
        "tester",
        TESTER.format(
            name="tester",
            max_steps=4,
            max_tokens=100000,
            max_cost=1.0,
            run_timeout=86400,
            can_events=5000,
        )
        + VARIANTS,
    )
    (agents_dir / "support-triage.toml").write_text(
        (PROJECT_ROOT / "agents" / "support-triage.toml").read_text()
    )
    flags_file = root / "flags.json"
    write_flags(flags_file)
    config = Settings(
        agents_dir=agents_dir,
        data_dir=root / "data",
        task_queue=f"flags-{uuid.uuid4().hex[:8]}",
        flags_file=flags_file,
        flags_poll_seconds=0.05,
        worker_versioning=False,
        **settings,
    )
    client = flags or FlagClient.from_settings(config)
    scripted = ScriptedProvider({})
    activities = build_activities(
        config,
        providers={"scripted": scripted, "local": LocalProvider()},
        tools=harness_tools(),
        flags=client,
    )
    try:
        async with build_worker(env.client, config, activities=activities):
            yield FlagRig(
                env.client,
                config,
                client,
                scripted,
                Ledger(config.data_dir / "side_effects.sqlite"),
            )
    finally:
        client.close()


def close_then_answer(account: str) -> Callable[[Any], Any]:
    def script(request: Any) -> Any:
        if any(m.role == "tool" for m in request.messages):
            return answer("done")
        return calls(1, ("close_account", {"account_id": account}))

    return script


async def test_flag_choices_are_recorded_and_replay_after_the_file_changes(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(time_env, tmp_path) as rig:
        write_flags(rig.settings.flags_file, serve(1, "agent-variant"))
        await rig.until_flag("agent-variant", "candidate")
        text = f"hello {uuid.uuid4().hex[:6]}"
        rig.scripted.scripts[text] = lambda request: answer("hi")
        run_id, result = await rig.run("tester", text)
        assert result.status is RunStatus.COMPLETED
        assert result.config is not None
        assert (result.config.variant, result.config.prompt_version) == ("candidate", "v3")
        variant = next(f for f in result.config.flags if f.key == "agent-variant")
        assert (variant.value, variant.variation, variant.reason) == ("candidate", 1, "FALLTHROUGH")
        assert rig.scripted.requests[-1].messages[0].content == "You are the candidate test agent."

        # The flag flips back; the recorded run neither changes nor fails to replay.
        write_flags(rig.settings.flags_file, serve(0, "agent-variant"))
        await rig.until_flag("agent-variant", "control")
        history = await rig.client.get_workflow_handle(run_id).fetch_history()
        replay = await Replayer(
            workflows=WORKFLOWS, data_converter=pydantic_data_converter
        ).replay_workflow(WorkflowHistory.from_json(run_id, history.to_json()))
        assert replay.replay_failure is None
        # A query of the closed run replays it on the worker: still the candidate.
        state = await rig.client.get_workflow_handle(run_id).query(
            Query.STATE, result_type=AgentRunState
        )
        assert state.config is not None and state.config.variant == "candidate"


async def test_missing_flag_uses_defaults_marks_the_run_and_refuses_destructive_tools(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(time_env, tmp_path) as rig:
        write_flags(rig.settings.flags_file, lambda flags: flags.pop("model"))
        await rig.until_missing("model")  # a run started before the reload would see it
        text = f"close it {uuid.uuid4().hex[:6]}"
        rig.scripted.scripts[text] = close_then_answer("acct-7")
        _, result = await rig.run("tester", text)

    assert result.status is RunStatus.COMPLETED
    assert result.config is not None and result.config.model == "scripted/test"
    assert "flag model: FLAG_NOT_FOUND" in (result.config.flags_degraded or "")
    kinds = [event.kind for event in result.safety_events]
    assert "flags_degraded" in kinds and "flags_degraded_refusal" in kinds
    [close] = result.tool_calls
    assert close.decision == "denied" and not close.ok
    assert await rig.ledger.effects() == []


async def test_unreachable_launchdarkly_at_start_refuses_new_runs_and_marks_them(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(
        time_env,
        tmp_path,
        launchdarkly_sdk_key=SecretStr("sdk-test-key"),
        launchdarkly_base_uri="http://127.0.0.1:9",  # nothing listens: unreachable
        flags_start_wait_seconds=0.2,
    ) as rig:
        assert not rig.flags.is_ready
        text = f"close it {uuid.uuid4().hex[:6]}"
        rig.scripted.scripts[text] = close_then_answer("acct-8")
        _, result = await rig.run("tester", text)

    # The kill switches cannot be read: fail closed, the new run is refused before any call.
    assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.KILL_SWITCH)
    assert (result.reason or "").startswith("refused: kill switch state unknown: flags from")
    assert result.steps == 0 and rig.scripted.requests == [] and result.tool_calls == []
    assert result.config is not None
    assert (result.config.variant, result.config.prompt_version) == ("control", "v2")
    assert "CLIENT_NOT_READY" in (result.config.flags_degraded or "")
    assert "not loaded" in (result.config.flags_degraded or "")
    assert all(f.is_default for f in result.config.flags)
    kinds = {event.kind for event in result.safety_events}
    assert {"flags_degraded", "flags_degraded_refusal"} <= kinds
    assert await rig.ledger.effects() == []


async def test_kill_switch_refuses_new_runs_and_a_killed_tool(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(time_env, tmp_path) as rig:
        write_flags(rig.settings.flags_file, serve(1, "kill-switch.tool.refund_order"))
        await rig.until_flag("kill-switch.tool.refund_order", True)
        _, result = await rig.run("support-triage", SMALL_REFUND)
        assert result.status is RunStatus.COMPLETED  # answered without the refund
        refund = next(c for c in result.tool_calls if c.tool == "refund_order")
        assert refund.decision == "denied" and "kill-switch.tool.refund_order" in (
            refund.error or ""
        )
        assert await rig.ledger.refunds() == []

        write_flags(rig.settings.flags_file, serve(1, "kill-switch.agent.support-triage"))
        await rig.until_flag("kill-switch.agent.support-triage", True)
        before = len(rig.scripted.requests)
        _, refused = await rig.run("support-triage", SMALL_REFUND)
        assert refused.status is RunStatus.HALTED
        assert refused.stop_reason is StopReason.KILL_SWITCH
        assert (refused.reason or "").startswith(
            "refused: kill switch kill-switch.agent.support-triage"
        )
        assert refused.steps == 0 and len(rig.scripted.requests) == before


async def test_a_fallback_model_answers_when_the_primary_fails_for_good(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with flag_rig(time_env, tmp_path) as rig:
        write_flags(rig.settings.flags_file, set_value("fallback-model", "scripted/backup"))
        await rig.until_flag("fallback-model", "scripted/backup")
        text = f"hello {uuid.uuid4().hex[:6]}"
        rig.scripted.scripts[text] = only_on("scripted/backup", lambda request: answer("hi"))
        _, result = await rig.run("tester", text)
        # No script for this text: every model's call fails, and the run with them.
        _, failed = await rig.run("tester", f"nobody answers {uuid.uuid4().hex[:6]}")

    assert (result.status, result.output) == (RunStatus.COMPLETED, "hi")
    asked = [r.model.model for r in rig.scripted.requests[:2]]
    assert asked == ["scripted/test", "scripted/backup"]
    [fallback] = [e for e in result.safety_events if e.kind == "model_fallback"]
    assert fallback.detail == (
        "scripted/test failed (ModelRequestRejected: scripted/test is down); trying fallback"
    )
    # Priced at the model that answered: 100 input and 20 output tokens at $10 and $20 per M.
    assert result.usage.cost_usd == 0.0014
    assert (failed.status, failed.stop_reason) == (RunStatus.FAILED, StopReason.MODEL_ERROR)
    assert (failed.reason or "").startswith("model call failed: ModelRequestRejected: no script")
    assert "; fallback scripted/backup: ModelRequestRejected: no script" in (failed.reason or "")
