"""Kill switches on the dev server: flipping one in the flag file halts every open run it
covers, whatever the run is doing (a model call in flight, waiting on an approval, inside a
tool), refuses new runs before any model call, and lets runs through again once it is off."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.flags import FlagClient, evaluation_context
from activities.models.local import LocalProvider
from activities.tools.ledger import Ledger
from activities.tools.registry import Tool, ToolContext
from activities.tools.support import support_tools
from opsready.client import OpsreadyClient
from opsready.flags import LocalFlagFile
from opsready.settings import PROJECT_ROOT, SHIPPED_FLAGS_FILE, Settings
from tests.conftest import write_agent
from workers.app import build_activities, build_worker
from workers.kill_switch import DIRECT_LIMIT, KillSwitchListener
from workflows.contract import AGENT_STOP_REASON, kill_switch_key
from workflows.payloads import ChatMessage, ModelCallInput, ModelCallResult, ToolCallRequest
from workflows.types import AgentRunResult, RiskTier, RunStatus, StopReason

pytestmark = pytest.mark.integration

BIG_REFUND = "My headphones from order A-1002 arrived broken, I want a refund."
QUESTION = "Where is my order A-1003? It was due days ago and it is late."
HOLD_MODEL = "[hold the model call]"
CALL_SLOW_TOOL = "[call the slow tool]"
SLOW_TOOL = "wait_for_cancel"
T = TypeVar("T")


class WaitArgs(BaseModel):
    note: str


@dataclass
class SlowTool:
    """A tool that runs until it is cancelled (the tool activity heartbeats meanwhile, and a
    heartbeat is how the cancellation reaches it)."""

    started: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)

    async def run(self, args: WaitArgs, ctx: ToolContext) -> dict[str, str]:
        self.started.add(ctx.run_id)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.add(ctx.run_id)
            raise
        return {"note": args.note}

    def tool(self) -> Tool:
        return Tool(SLOW_TOOL, "Wait until cancelled.", WaitArgs, RiskTier.READ, self.run)


class ScenarioModel:
    """The demo's local model, plus two scenarios chosen by the user's message: a model call
    that blocks until released, and a call of the slow tool. Every request is kept."""

    name = "local"

    def __init__(self) -> None:
        self.demo = LocalProvider()
        self.release = asyncio.Event()
        self.held: set[str] = set()
        self.requests: list[ModelCallInput] = []

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        self.requests.append(request)
        text = next(m.content or "" for m in request.messages if m.role == "user")
        if HOLD_MODEL in text:
            self.held.add(request.run_id)
            await self.release.wait()
            message = ChatMessage(role="assistant", content="late answer")
            return ModelCallResult(message=message, input_tokens=10, output_tokens=5)
        if CALL_SLOW_TOOL in text and not any(m.role == "tool" for m in request.messages):
            call = ToolCallRequest(id="call_1", name=SLOW_TOOL, arguments={"note": "test"})
            message = ChatMessage(role="assistant", tool_calls=[call])
            return ModelCallResult(message=message, input_tokens=10, output_tokens=5)
        return await self.demo.complete(request)

    def calls_of(self, run_id: str) -> int:
        return sum(1 for r in self.requests if r.run_id == run_id)

    async def aclose(self) -> None:
        return None


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 30.0) -> T:
    """Poll `probe` until it returns something other than None."""
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if value is not None:
                return value
            await asyncio.sleep(0.05)


def agent_toml(name: str) -> str:
    """The support-triage definition under another name, with the slow tool added."""
    toml = (PROJECT_ROOT / "agents" / "support-triage.toml").read_text()
    return toml.replace('name = "support-triage"', f'name = "{name}"') + f"\n[tools.{SLOW_TOOL}]\n"


@dataclass
class Rig:
    client: Client
    runs: OpsreadyClient
    settings: Settings
    flags: FlagClient
    store: LocalFlagFile
    model: ScenarioModel
    slow: SlowTool
    agent: str
    other_agent: str

    @asynccontextmanager
    async def listening(self, **options: Any) -> AsyncIterator[KillSwitchListener]:
        async with KillSwitchListener(self.client, self.settings, self.flags, **options) as ks:
            yield ks

    async def start(self, agent: str, text: str) -> str:
        return await self.runs.start_run(agent, text, user_id="customer-17")

    async def result(self, run_id: str) -> AgentRunResult:
        async with asyncio.timeout(30):
            return await self.runs.result(run_id)

    async def until_parked(self, *, held: str = "", waiting: str = "", in_tool: str = "") -> None:
        """Until each run is where the test wants it: its model call blocked, waiting on an
        approval with nothing else in flight, or inside the slow tool."""

        async def parked() -> bool | None:
            if held and held not in self.model.held:
                return None
            if in_tool and in_tool not in self.slow.started:
                return None
            if waiting:
                description = await self.client.get_workflow_handle(waiting).describe()
                state = await self.runs.state(waiting)
                if state.status is not RunStatus.AWAITING_APPROVAL:
                    return None
                # Waiting on the approval itself: nothing else in flight, not even the
                # workflow task that handles the notification's result.
                raw = description.raw_description
                if raw.pending_activities or raw.HasField("pending_workflow_task"):
                    return None
            return True

        await eventually(parked)

    async def until_flag(self, key: str, agent: str, value: bool) -> None:
        async def seen() -> bool | None:
            evaluation = self.flags.evaluate(key, evaluation_context(agent), False)
            return True if evaluation.value is value else None

        await eventually(seen, timeout=10)

    async def refunds(self) -> list[dict[str, Any]]:
        return await Ledger(self.settings.data_dir / "side_effects.sqlite").refunds()


@pytest.fixture
async def rig(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Rig]:
    agent, other_agent = f"triage-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    for name in (agent, other_agent):
        write_agent(tmp_path / "agents", name, agent_toml(name))
    flags_file = tmp_path / "flags.json"
    shutil.copy(SHIPPED_FLAGS_FILE, flags_file)
    settings = Settings(
        agents_dir=tmp_path / "agents",
        data_dir=tmp_path / "data",
        flags_file=flags_file,
        task_queue=f"ks-{uuid.uuid4().hex[:8]}",
        worker_versioning=False,
    )
    model, slow = ScenarioModel(), SlowTool()
    tools = [*support_tools(PROJECT_ROOT / "agents" / "data" / "support-triage"), slow.tool()]
    flags = FlagClient.from_settings(settings)  # this test's file, closed at the end
    activities = build_activities(settings, providers={"local": model}, tools=tools, flags=flags)
    try:
        async with build_worker(dev_env.client, settings, activities=activities):
            try:
                yield Rig(
                    dev_env.client,
                    OpsreadyClient(dev_env.client, settings),
                    settings,
                    flags,
                    LocalFlagFile(flags_file),
                    model,
                    slow,
                    agent,
                    other_agent,
                )
            finally:
                model.release.set()  # let the held model call return before the worker stops
    finally:
        flags.close()


def assert_halted_by(result: AgentRunResult, flag: str) -> None:
    assert result.status is RunStatus.HALTED, result.reason
    # Halted by the listener's signal (halt), or by the run's own check when a cancelled
    # call returned before the signal was handled (kill_switch).
    assert result.stop_reason in (StopReason.HALT, StopReason.KILL_SWITCH), result.stop_reason
    assert f"kill switch {flag} is on" in (result.reason or ""), result.reason


async def test_agent_kill_switch_halts_runs_in_every_state_refuses_new_ones_until_unkilled(
    rig: Rig,
) -> None:
    agent, flag = rig.agent, kill_switch_key(agent=rig.agent)
    async with rig.listening():
        held = await rig.start(agent, f"{HOLD_MODEL} hello")
        waiting = await rig.start(agent, BIG_REFUND)
        in_tool = await rig.start(agent, f"{CALL_SLOW_TOOL} please")
        await rig.until_parked(held=held, waiting=waiting, in_tool=in_tool)
        calls_before = {run: rig.model.calls_of(run) for run in (held, waiting, in_tool)}

        await rig.store.kill(agent=agent)
        results = {run: await rig.result(run) for run in (held, waiting, in_tool)}

        for result in results.values():
            assert_halted_by(result, flag)
        assert results[held].stop_reason is StopReason.HALT  # no call returned to check it
        assert [(a.tool, a.outcome) for a in results[waiting].approvals] == [
            ("refund_order", "halted")
        ]
        assert await rig.refunds() == []
        assert {run: rig.model.calls_of(run) for run in calls_before} == calls_before
        await eventually(lambda: _true_if(in_tool in rig.slow.cancelled))  # by heartbeat

        refused = await rig.start(agent, QUESTION)
        result = await rig.result(refused)
        assert result.status is RunStatus.HALTED
        assert result.stop_reason is StopReason.KILL_SWITCH
        assert (result.reason or "").startswith("refused: kill switch"), result.reason
        assert rig.model.calls_of(refused) == 0 and result.steps == 0

        # The UI's "halted by a kill switch" list: every run the switch stopped, by the
        # listener's halt or the run's own check, and no other.
        stopped = (held, waiting, in_tool, refused)
        for run in stopped:
            attrs = (await rig.client.get_workflow_handle(run).describe()).typed_search_attributes
            assert attrs.get(AGENT_STOP_REASON) == StopReason.KILL_SWITCH.value, run

        await rig.store.unkill(agent=agent)
        await rig.until_flag(flag, agent, False)
        after_id = await rig.start(agent, QUESTION)
        after = await rig.result(after_id)
        assert after.status is RunStatus.COMPLETED, after.reason
        described = await rig.client.get_workflow_handle(after_id).describe()
        assert described.typed_search_attributes.get(AGENT_STOP_REASON) is None


@pytest.mark.parametrize("direct_limit", [DIRECT_LIMIT, 0], ids=["direct-signals", "batch"])
async def test_global_kill_switch_halts_runs_of_every_agent(rig: Rig, direct_limit: int) -> None:
    # Scoped to this test's task queue: the dev server is shared by the whole session.
    async with rig.listening(task_queue=rig.settings.task_queue, direct_limit=direct_limit):
        waiting = await rig.start(rig.agent, BIG_REFUND)
        in_tool = await rig.start(rig.other_agent, f"{CALL_SLOW_TOOL} please")
        await rig.until_parked(waiting=waiting, in_tool=in_tool)

        await rig.store.kill()
        for run in (waiting, in_tool):
            assert_halted_by(await rig.result(run), "kill-switch")
        assert await rig.refunds() == []
        await rig.store.unkill()


async def test_a_failed_halt_is_retried_on_the_next_tick(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = rig.client.workflow_service
    real_start = service.start_batch_operation
    attempts: list[str] = []

    async def fail_once(request: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(request.job_id)
        if len(attempts) == 1:
            raise RPCError("injected failure", RPCStatusCode.UNAVAILABLE, b"")
        return await real_start(request, *args, **kwargs)

    monkeypatch.setattr(service, "start_batch_operation", fail_once)
    async with rig.listening(direct_limit=0):
        waiting = await rig.start(rig.agent, BIG_REFUND)
        await rig.until_parked(waiting=waiting)
        await rig.store.kill(agent=rig.agent)
        assert_halted_by(await rig.result(waiting), kill_switch_key(agent=rig.agent))
    assert len(attempts) == 2 and attempts[0] != attempts[1]


async def _true_if(condition: bool) -> bool | None:
    return True if condition else None
