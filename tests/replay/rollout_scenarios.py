"""The golden-history scenarios of `CanaryRollout`: each way its approval gate and its stages end.

Played on the flag-rollout rig of tests/fakes/canary.py (a real flag file and outcome store,
simulated traffic), each on a fresh rig, so one rollout's flag writes never steer the next.
`opsready history record` writes them as `canary_rollout-<name>.json`; the replay tests
replay them with the AgentRun histories. `CanaryRollout` auto-upgrades, so every change to
its commands needs a patch, and these histories are what proves it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowHandle

from tests.fakes.canary import Canary, Shape
from workflows.contract import Signal, Update
from workflows.rollout_types import AbortRequest, RolloutState, RolloutStatus
from workflows.types import ApprovalDecision

RolloutHandle = WorkflowHandle[Any, RolloutState]
RolloutPlay = Callable[[Canary], Awaitable[tuple[RolloutHandle, RolloutState]]]


@dataclass(frozen=True)
class RolloutScenario:
    """One recorded rollout: file `canary_rollout-<name>.json`."""

    name: str
    play: RolloutPlay  # starts the rollout, acts on it, returns its handle and final state
    ends: RolloutStatus  # how the rollout must end, or the recording fails
    approval: str | None  # the approval's outcome it must record (None: never asked)


def _waiting(state: RolloutState) -> bool:
    return state.status == "awaiting_approval"


async def _approved_by_update(canary: Canary) -> tuple[RolloutHandle, RolloutState]:
    with canary.env.auto_time_skipping_disabled():
        handle = await canary.start()
        waiting = await canary.drive_until(handle, _waiting)
        assert waiting.approval is not None
        decision = ApprovalDecision(
            request_id=waiting.approval.request_id, approved=True, approver="alice"
        )
        await handle.execute_update(Update.DECIDE, decision, result_type=RolloutState)
        return handle, await handle.result()


async def _rejected_by_signal(canary: Canary) -> tuple[RolloutHandle, RolloutState]:
    canary.candidate_traffic = lambda percent: 40  # enough runs at every stage
    with canary.env.auto_time_skipping_disabled():
        handle = await canary.start()
        await canary.drive_until(handle, _waiting)
        decision = ApprovalDecision(approved=False, approver="bob", comment="queue spiking")
        await handle.signal(Signal.APPROVAL_DECISION, decision)
        return handle, await handle.result()


async def _approval_timed_out(canary: Canary) -> tuple[RolloutHandle, RolloutState]:
    canary.candidate_traffic = lambda percent: 40
    handle = await canary.start(approvers=["alice"])  # nobody answers: time skips past it
    return handle, await handle.result()


async def _aborted_while_soaking(canary: Canary) -> tuple[RolloutHandle, RolloutState]:
    with canary.env.auto_time_skipping_disabled():
        handle = await canary.start()
        await canary.drive_until(
            handle, lambda s: s.stage_index == 1 and s.next_check_at is not None
        )
        await handle.signal(Signal.ABORT, AbortRequest(reason="error budget", by="oncall"))
        return handle, await handle.result()


async def _rolled_back_unhealthy(canary: Canary) -> tuple[RolloutHandle, RolloutState]:
    canary.candidate = Shape(success_rate=0.6)
    handle = await canary.start()
    return handle, await handle.result()


ROLLOUT_SCENARIOS: tuple[RolloutScenario, ...] = (
    RolloutScenario("promoted-approved-by-update", _approved_by_update, "promoted", "approved"),
    RolloutScenario("rejected-by-signal", _rejected_by_signal, "rolled_back", "rejected"),
    RolloutScenario("approval-timed-out", _approval_timed_out, "rolled_back", "timed_out"),
    RolloutScenario("aborted-while-soaking", _aborted_while_soaking, "aborted", None),
    RolloutScenario("rolled-back-unhealthy", _rolled_back_unhealthy, "rolled_back", None),
)
