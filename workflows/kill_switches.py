"""The kill-switch check `AgentRun` makes before a call, in a local activity, and how a
check that fails is taken: as a switch that cannot be read (fail closed, issue 9).

Lean runs (issue 13) leave most checks to the config, model and tool activities, which
report what they found (`RunRecord.kill_switch_seen`); they ask here only before an
approval, so nobody approves a call its switch refuses. Deterministic (workflow code).
"""

from __future__ import annotations

from typing import Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from workflows import calls
from workflows.contract import SafetyKind
from workflows.payloads import KillSwitchCheck, KillSwitchInput, RunConfig
from workflows.run_record import RunRecord

# Runs without a lean marker ask this at their first check: before it, no check was made.
KILL_SWITCH_PATCH = "kill-switch-checks"
# A kill-switch check that fails (any failure, not only an ActivityError: see `check`) is an
# unknown switch: fail closed. Asked only when such a failure lands.
KILL_SWITCH_FAILURE_PATCH = "kill-switch-failure-unchecked"


class Halts(Protocol):
    def stop_if_halted(self) -> None: ...


async def check(
    run: Halts, record: RunRecord, config: RunConfig, tool: str | None
) -> KillSwitchCheck | None:
    """The kill-switch check before a call: None when the call may go ahead, else a check
    that is on (`is_killed`) or could not be read (`is_unknown`: the caller refuses a new
    run or a destructive tool, and the run is marked `flags_degraded`). Lean runs: the
    run's own switches as the config activity found them, at its first step (the model and
    tool activities check later calls themselves); a tool's before an approval is asked for
    it (the local activity, as every check was before)."""
    if record.is_lean and tool is None:
        return record.kill_switch_seen(config.kill_switch) if record.state.step == 0 else None
    if not record.is_lean and not workflow.patched(KILL_SWITCH_PATCH):
        return None
    try:
        found = await calls.check_kill_switch(
            KillSwitchInput(agent=config.agent, tool=tool, context=record.context())
        )
    except FailureError as err:
        # temporalio 1.35 hands a failed local activity over unwrapped: an ApplicationError
        # when it raised (every time), and a bare TimeoutError when it timed out, on replay
        # (an ActivityError the first time). Catching only ActivityError failed such runs,
        # and failed their replay.
        run.stop_if_halted()
        return _unchecked(record, err)
    run.stop_if_halted()
    if found.is_killed:
        return found
    if found.is_unknown:
        record.switch_unknown(found)
        return found
    return None


def _unchecked(record: RunRecord, err: FailureError) -> KillSwitchCheck | None:
    detail = calls.cause(err) if isinstance(err, ActivityError) else str(err)
    if workflow.patched(KILL_SWITCH_FAILURE_PATCH):
        record.safety(SafetyKind.KILL_SWITCH_UNCHECKED, detail)
        unknown = KillSwitchCheck(
            is_killed=False, is_unknown=True, reason=f"kill switch not checked: {detail}"
        )
        record.switch_unknown(unknown)
        return unknown
    if isinstance(err, ApplicationError):
        raise err  # recorded before the patch: the run failed here
    # Recorded before the patch: flags unreachable, the listener's batch halt the backstop.
    record.safety(SafetyKind.KILL_SWITCH_UNCHECKED, detail)
    return None
