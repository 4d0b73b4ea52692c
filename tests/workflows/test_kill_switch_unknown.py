"""The kill switch fails closed (issue 9): with the flag file truncated mid-write while the
worker runs, with a kill-switch value of "yes", and with no flag file at start, new runs and
destructive tools are refused and the run is marked `flags_degraded`. Lean runs check in
their activities (issue 13): a check that fails there, or in the local activity before an
approval, is an unknown switch too (`kill_switch_unchecked`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHistory
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.flags import FlagClient, evaluation_context
from opsready.runs import run_result
from opsready.settings import Settings
from tests.workflows.conftest import harness_tools
from tests.workflows.test_flags import FlagRig, close_then_answer, flag_rig, set_value, write_flags
from workers.app import WORKFLOWS, build_activities, build_worker
from workflows import calls
from workflows.contract import Activity
from workflows.payloads import KillSwitchCheck, KillSwitchInput, ModelCallInput, ModelCallResult
from workflows.types import AgentRunRequest, AgentRunResult, RunStatus, StopReason


def truncate_mid_write(rig: FlagRig) -> None:
    """What a writer that died half-way (no write-then-rename) leaves behind."""
    path = rig.settings.flags_file
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def kill_switch_yes(rig: FlagRig) -> None:
    write_flags(rig.settings.flags_file, set_value("kill-switch", "yes"))


async def until(holds: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if holds():
                return
            await asyncio.sleep(0.02)


def switch_unknown(rig: FlagRig) -> bool:
    check = rig.flags.kill_switch("tester", "close_account", evaluation_context("tester"))
    return check.is_unknown


async def a_run_in_flight_then(
    rig: FlagRig, break_flags: Callable[[FlagRig], None]
) -> AgentRunResult:
    """Start a run whose first model call is held; break the flags; let the model propose
    the destructive `close_account`; the run's result."""
    text = f"close it {uuid.uuid4().hex[:6]}"
    rig.scripted.scripts[text] = close_then_answer("acct-9")
    held, release = asyncio.Event(), asyncio.Event()
    original = rig.scripted.complete

    async def holding(request: ModelCallInput) -> ModelCallResult:
        if request.step == 1:
            held.set()
            await release.wait()
        return await original(request)

    rig.scripted.complete = holding  # type: ignore[method-assign]
    try:
        running = asyncio.create_task(rig.run("tester", text))
        async with asyncio.timeout(10):
            await held.wait()
        break_flags(rig)
        await until(lambda: switch_unknown(rig))
        release.set()
        _, result = await running
    finally:
        rig.scripted.complete = original  # type: ignore[method-assign]
    return result


def assert_marked_degraded(result: AgentRunResult, why: str) -> None:
    assert result.config is not None and why in (result.config.flags_degraded or "")
    assert "flags_degraded" in {e.kind for e in result.safety_events}


async def assert_new_runs_refused(rig: FlagRig, why: str) -> None:
    before = len(rig.scripted.requests)
    _, refused = await rig.run("tester", "anything")
    assert (refused.status, refused.stop_reason) == (RunStatus.HALTED, StopReason.KILL_SWITCH)
    assert (refused.reason or "").startswith("refused: kill switch state unknown"), refused.reason
    assert why in (refused.reason or "")
    assert refused.steps == 0 and len(rig.scripted.requests) == before
    assert_marked_degraded(refused, why)


Break = Callable[[FlagRig], None]
CASES: list[tuple[str, Break, str]] = [
    ("truncated", truncate_mid_write, "flag file unreadable, last good flags kept"),
    ("yes", kill_switch_yes, "kill-switch is 'yes', not true or false"),
]


async def _refuses_after(
    env: WorkflowEnvironment, root: Path, case: tuple[str, Break, str]
) -> None:
    _, break_flags, why = case
    async with flag_rig(env, root) as rig:
        result = await a_run_in_flight_then(rig, break_flags)
        # The run in flight goes on, without its destructive tool, and says why.
        assert result.status is RunStatus.COMPLETED, result.reason
        [close] = result.tool_calls
        assert (close.tool, close.decision, close.ok) == ("close_account", "denied", False)
        assert why in (close.error or "")
        assert "flags_degraded_refusal" in {e.kind for e in result.safety_events}
        assert_marked_degraded(result, why)
        await assert_new_runs_refused(rig, why)
        assert await rig.ledger.effects() == []


async def test_a_flag_file_truncated_mid_write_fails_closed(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    await _refuses_after(time_env, tmp_path, CASES[0])


async def test_a_kill_switch_value_of_yes_fails_closed(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    await _refuses_after(time_env, tmp_path, CASES[1])


async def test_a_flag_file_missing_at_start_fails_closed(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    missing = Settings(flags_file=tmp_path / "no-such-flags.json", flags_start_wait_seconds=0.2)
    flags = FlagClient.from_settings(missing)
    async with flag_rig(time_env, tmp_path, flags=flags) as rig:
        why = "not loaded"
        await assert_new_runs_refused(rig, why)
        # What the run's check of a destructive tool would see: unknown, so refused.
        check = flags.kill_switch("tester", "close_account", evaluation_context("tester"))
        assert check.is_unknown and not check.is_killed and why in (check.reason or "")
        assert await rig.ledger.effects() == []


# --- a kill-switch check that fails -----------------------------------------------------


@activity.defn(name=Activity.CHECK_KILL_SWITCH)
async def raising_check(request: KillSwitchInput) -> KillSwitchCheck:
    raise RuntimeError("flag store exploded")


@activity.defn(name=Activity.CHECK_KILL_SWITCH)
async def hanging_check(request: KillSwitchInput) -> KillSwitchCheck:
    await asyncio.sleep(30)
    raise AssertionError("cut by its timeout")


async def _replays(history: WorkflowHistory) -> None:
    replay = await Replayer(
        workflows=WORKFLOWS, data_converter=pydantic_data_converter
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None


@pytest.mark.parametrize(
    ("check", "detail"),
    [(raising_check, "RuntimeError: flag store exploded"), (hanging_check, "timed out")],
    ids=["raises", "times-out"],
)
async def test_a_failed_check_before_an_approval_is_an_unknown_switch_and_replays(
    time_env: WorkflowEnvironment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    check: Callable[..., Any],
    detail: str,
) -> None:
    # The local activity a lean run asks before an approval. temporalio 1.35 hands its
    # failures over unwrapped (an ApplicationError; on replay a bare TimeoutError): before
    # issue 9, the first failed the run, the second failed its replay.
    monkeypatch.setattr(calls, "KILL_SWITCH_TIMEOUT", timedelta(seconds=0.3))
    monkeypatch.setattr(calls, "KILL_SWITCH_RETRY", RetryPolicy(maximum_attempts=2))
    async with flag_rig(time_env, tmp_path) as rig:
        text = f"close it {uuid.uuid4().hex[:6]}"
        rig.scripted.scripts[text] = close_then_answer("acct-9")
        activities = [
            a
            for a in build_activities(
                rig.settings, providers={"scripted": rig.scripted}, tools=harness_tools()
            )
            if a.__name__ != "check_kill_switch"
        ]
        queue = f"{rig.settings.task_queue}-failing"
        settings = rig.settings.model_copy(update={"task_queue": queue})
        async with build_worker(rig.client, settings, activities=[*activities, check]):
            handle = await rig.client.start_workflow(
                "AgentRun",
                AgentRunRequest(agent="tester", input=text),
                id=f"unchecked-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
                result_type=AgentRunResult,
            )
            result = await run_result(handle)
        history = await handle.fetch_history()
    # Nobody was asked to approve the destructive tool; the run answered without it.
    assert result.status is RunStatus.COMPLETED, result.reason
    [close] = result.tool_calls
    assert (close.tool, close.decision) == ("close_account", "denied")
    assert "kill switch not checked" in (close.error or "") and result.approvals == []
    [unchecked] = [e for e in result.safety_events if e.kind == "kill_switch_unchecked"]
    assert detail in unchecked.detail
    assert_marked_degraded(result, "kill switch not checked")
    assert await rig.ledger.effects() == []
    await _replays(history)


async def test_a_check_that_raises_inside_the_config_activity_refuses_the_new_run(
    time_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exploding(agent: str, tool: str | None, context: Any) -> KillSwitchCheck:
        raise RuntimeError("flag store exploded")

    async with flag_rig(time_env, tmp_path) as rig:
        monkeypatch.setattr(rig.flags, "kill_switch", exploding)
        before = len(rig.scripted.requests)
        run_id, result = await rig.run("tester", "anything")
        history = await rig.client.get_workflow_handle(run_id).fetch_history()
    assert (result.status, result.stop_reason) == (RunStatus.HALTED, StopReason.KILL_SWITCH)
    assert (result.reason or "").startswith("refused: kill switch not checked:")
    assert result.steps == 0 and len(rig.scripted.requests) == before
    [unchecked] = [e for e in result.safety_events if e.kind == "kill_switch_unchecked"]
    assert "RuntimeError: flag store exploded" in unchecked.detail
    assert_marked_degraded(result, "RuntimeError: flag store exploded")
    await _replays(history)
