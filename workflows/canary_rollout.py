"""`CanaryRollout`: move traffic from a control to a candidate in stages: a flag's variations,
or the builds of a Worker Deployment (`RolloutRequest.deployment`: a ramp of new runs).

Each stage sets the candidate's percentage (an activity), soaks, compares the candidate and
control cohorts' recorded run outcomes since the stage began (an activity; by variation, or
by build id) and promotes, holds or rolls back (`rollout_gates.judge_stage`). A person
approves the step to 100%. Rollback, timeout and rejection all fail closed: the candidate
goes back to 0% at once. A flag rollout emits exactly the commands it always did (the
workflow auto-upgrades); only a deployment rollout, a new input, takes the new paths.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from workflows import visibility
from workflows.approvals import ApprovalGate, ApprovalRound
from workflows.contract import ROLLOUT_WORKFLOW, Activity, ErrorType, Query, Signal, Update
from workflows.rollout_gates import judge_stage
from workflows.rollout_types import (
    AbortRequest,
    Cohort,
    CohortComparison,
    CompareCohortsInput,
    DeploymentTarget,
    RolloutApproval,
    RolloutRequest,
    RolloutState,
    RolloutStatus,
    SetDeploymentRampInput,
    SetDeploymentRampResult,
    SetRolloutInput,
    SetRolloutResult,
    StageDecision,
)
from workflows.types import ApprovalDecision

_FORWARD_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[ErrorType.INVALID_ROLLOUT],
)
# Going back to control must not give up while the flag store or Temporal is unreachable.
_ROLLBACK_RETRY = RetryPolicy(
    maximum_interval=timedelta(seconds=60), non_retryable_error_types=[ErrorType.INVALID_ROLLOUT]
)
_COMPARE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=5)

# How the rollout ends when it does not promote: (status, reason).
_End = tuple[RolloutStatus, str]


def _cause(err: ActivityError) -> str:
    """The activity's own error message, without the failure wrapping and type prefix."""
    cause = err.cause
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    return cause.message if isinstance(cause, FailureError) else str(err)


@workflow.defn(name=ROLLOUT_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class CanaryRolloutWorkflow:
    @workflow.init
    def __init__(self, request: RolloutRequest) -> None:
        self._request = request
        self._state = RolloutState(
            flag=request.flag,
            candidate_variation=request.candidate_variation,
            control_variation=request.control_variation,
            deployment=request.deployment.model_copy() if request.deployment else None,
            stages=request.plan.stages,
        )
        self._abort: AbortRequest | None = None
        self._decision: ApprovalDecision | None = None
        self._is_target_touched = False  # a rollout write happened, or may have

    # --- public handlers ------------------------------------------------------------------

    @workflow.query(name=Query.STATE)
    def state(self) -> RolloutState:
        return self._state

    @workflow.signal(name=Signal.ABORT)
    def abort(self, request: AbortRequest) -> None:
        if self._abort is None and not self._state.is_terminal:
            self._abort = request

    @workflow.signal(name=Signal.APPROVAL_DECISION)
    def approval_decision(self, decision: ApprovalDecision) -> None:
        try:
            self._check_decision(decision)
        except ValueError as err:  # a signal cannot be refused: log it and go on waiting
            workflow.logger.warning("approval signal ignored: %s", err)
            return
        self._decision = decision

    @workflow.update(name=Update.DECIDE)
    async def decide(self, decision: ApprovalDecision) -> RolloutState:
        try:  # again: another decision may have been taken since the validator ran
            self._check_decision(decision)
        except ValueError as err:
            raise ApplicationError(str(err), non_retryable=True) from None
        self._decision = decision
        await workflow.wait_condition(lambda: self._state.status != "awaiting_approval")
        return self._state

    @decide.validator
    def _validate_decide(self, decision: ApprovalDecision) -> None:
        self._check_decision(decision)

    # --- the rollout ----------------------------------------------------------------------

    @workflow.run
    async def run(self, request: RolloutRequest) -> RolloutState:
        self._state.started_at = workflow.now()
        self._set_status("starting")
        end = await self._roll_forward()
        if end is not None:
            await self._roll_back(*end)
        self._state.ended_at = workflow.now()
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _roll_forward(self) -> _End | None:
        """Stage by stage up to 100%; None once promoted, else how the rollout ends."""
        for index, percent in enumerate(self._request.plan.stages):
            self._state.stage_index, self._state.soaks = index, 0
            if percent >= 100:
                refused = await self._approval_gate(percent)
                if refused is not None:
                    return refused
            problem = await self._set_percent(percent, retry=_FORWARD_RETRY)
            if problem is not None and not self._is_target_touched:
                return "aborted", f"could not start: {problem}"
            if problem is not None:
                return "rolled_back", f"setting {percent:g}% failed: {problem}"
            if self._abort is not None:
                return self._aborted()
            if percent >= 100:
                self._state.reason = self._promoted_reason()
                self._set_status("promoted")
                return None
            verdict = await self._soak_and_judge(percent)
            if verdict is not None:
                return verdict
        raise AssertionError("the plan's last stage is 100%")  # RolloutPlan validates it

    async def _soak_and_judge(self, percent: float) -> _End | None:
        """Soak, compare, decide; again while the verdict is hold. None on promote."""
        plan = self._request.plan
        since = workflow.now()
        while True:
            self._state.next_check_at = workflow.now() + timedelta(seconds=plan.soak_seconds)
            self._set_status("soaking")
            is_aborted = await self._wait_until(lambda: self._abort is not None, plan.soak_seconds)
            self._state.next_check_at = None
            if is_aborted:
                return self._aborted()
            self._state.soaks += 1
            try:
                comparison = await self._compare(since)
            except ActivityError as err:
                return "rolled_back", f"health check at {percent:g}% failed: {_cause(err)}"
            if self._abort is not None:
                return self._aborted()
            verdict, reasons = judge_stage(
                comparison.candidate,
                comparison.control,
                plan.gates,
                soak=self._state.soaks,
                max_soaks=plan.max_soaks_per_stage,
            )
            self._state.decisions.append(
                StageDecision(
                    stage_percent=percent,
                    decided_at=workflow.now(),
                    decision=verdict,
                    reasons=reasons,
                    candidate=comparison.candidate,
                    control=comparison.control,
                    soak=self._state.soaks,
                )
            )
            workflow.logger.info("stage %g%%: %s (%s)", percent, verdict, "; ".join(reasons))
            if verdict == "promote":
                return None
            if verdict == "rollback":
                return "rolled_back", f"stage {percent:g}%: {'; '.join(reasons)}"

    async def _approval_gate(self, percent: float) -> _End | None:
        """Wait for a person to approve `percent`; None when approved, else the end."""
        approval = RolloutApproval(
            request_id=str(workflow.uuid4()),
            percent=percent,
            approvers=self._request.approvers,
            requested_at=workflow.now(),
        )

        def ask() -> None:
            self._state.approval = approval
            self._set_status("awaiting_approval")

        # Nobody is paged: the approvers follow the rollout (`opsready rollout status`, the
        # UI). An abort ends the wait too; no decision in time fails closed (rollback).
        timeout = self._request.plan.approval_timeout_seconds
        gate = ApprovalGate(lambda: self._decision is not None or self._abort is not None, ask=ask)
        await gate.run(ApprovalRound(self._request.approvers, timeout))
        approval.decided_at = workflow.now()
        decision = self._decision
        if decision is None:
            if self._abort is not None:
                approval.outcome = "aborted"
                approval.approver, approval.comment = self._abort.by, self._abort.reason
                return self._aborted()
            approval.outcome = "timed_out"
            return "rolled_back", f"no approval for {percent:g}% within {timeout:g}s"
        approval.approver, approval.comment = decision.approver, decision.comment
        approval.outcome = "approved" if decision.approved else "rejected"
        workflow.logger.info("%g%% %s by %s", percent, approval.outcome, decision.approver)
        if not decision.approved:
            why = f": {decision.comment}" if decision.comment else ""
            return "rolled_back", f"{percent:g}% rejected by {decision.approver}{why}"
        return None

    # --- steps ----------------------------------------------------------------------------

    async def _wait_until(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Wait until `condition` holds or `seconds` pass; whether it holds."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(condition, timeout=seconds)
        return condition()

    async def _set_percent(self, percent: float, *, retry: RetryPolicy) -> str | None:
        """Give the candidate `percent` (control the rest); the failure, if any."""
        try:
            if self._state.deployment is not None:
                await self._set_ramp(self._state.deployment, percent, retry)
            else:
                await self._set_flag_split(percent, retry)
        except ActivityError as err:
            is_refused = (
                isinstance(err.cause, ApplicationError)
                and err.cause.type == ErrorType.INVALID_ROLLOUT
            )
            self._is_target_touched |= not is_refused  # a lost reply may hide a done write
            return _cause(err)
        self._is_target_touched = True
        return None

    async def _set_flag_split(self, percent: float, retry: RetryPolicy) -> None:
        state = self._state
        assert state.flag is not None and state.candidate_variation is not None  # validated
        applied: SetRolloutResult = await workflow.execute_activity(
            Activity.ROLLOUT_SET_PERCENT,
            SetRolloutInput(
                flag=state.flag,
                candidate_variation=state.candidate_variation,
                control_variation=state.control_variation,
                percent=percent,
            ),
            result_type=SetRolloutResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=retry,
            summary=f"{state.flag}: candidate {percent:g}%",
        )
        state.control_variation = applied.control_variation
        state.percent = applied.percent

    async def _set_ramp(self, target: DeploymentTarget, percent: float, retry: RetryPolicy) -> None:
        applied: SetDeploymentRampResult = await workflow.execute_activity(
            Activity.ROLLOUT_SET_DEPLOYMENT_RAMP,
            SetDeploymentRampInput(
                deployment=target.deployment,
                candidate_build=target.candidate_build,
                control_build=target.control_build,
                percent=percent,
            ),
            result_type=SetDeploymentRampResult,
            # Each change waits (up to 10 s) until the routing reached every task queue.
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=retry,
            summary=f"{target.deployment}: build {target.candidate_build} {percent:g}%",
        )
        target.control_build = applied.control_build or target.control_build
        self._state.percent = applied.percent

    async def _compare(self, since: datetime) -> CohortComparison:
        state = self._state
        cohort = Cohort(flag=state.flag, agent=self._request.agent, since=since)
        if state.deployment is not None:
            target = state.deployment
            assert target.control_build is not None  # resolved by the first _set_percent
            candidate = cohort.model_copy(update={"build_id": target.candidate_build})
            control = cohort.model_copy(update={"build_id": target.control_build})
            subject = f"{target.deployment}: compare builds"
        else:
            assert state.control_variation is not None  # resolved by the first _set_percent
            candidate = cohort.model_copy(update={"variation": state.candidate_variation})
            control = cohort.model_copy(update={"variation": state.control_variation})
            subject = f"{state.flag}: compare cohorts"
        comparison: CohortComparison = await workflow.execute_activity(
            Activity.ROLLOUT_COMPARE_COHORTS,
            CompareCohortsInput(candidate=candidate, control=control),
            result_type=CohortComparison,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=_COMPARE_RETRY,
            summary=f"{subject} at {state.percent:g}%",
        )
        return comparison

    async def _roll_back(self, status: RolloutStatus, reason: str) -> None:
        """Candidate to 0% (control 100%) now, and say why. Nothing to undo when no rollout
        write happened (the flag store or the deployment refused the first one)."""
        self._state.reason = reason
        if self._is_target_touched:
            problem = await self._set_percent(0, retry=_ROLLBACK_RETRY)
            if problem is not None:
                self._state.reason = f"{reason}; ROLLBACK FAILED ({problem}): {self._by_hand()}"
        workflow.logger.warning("rollout ended %s: %s", status, self._state.reason)
        self._set_status(status)

    def _promoted_reason(self) -> str:
        target = self._state.deployment
        if target is None:
            return f"promoted: the candidate serves 100% of {self._state.flag}"
        return f"promoted: {target.candidate_build} is the current build of {target.deployment}"

    def _by_hand(self) -> str:
        """What an operator runs when the rollback itself failed."""
        target = self._state.deployment
        if target is None:
            return f"set {self._state.flag} by hand"
        where = f"--deployment {target.deployment}"
        restore = (
            f" (and `opsready deploy set-current {target.control_build} {where}` if "
            f"{target.candidate_build} is current)"
            if target.control_build
            else ""
        )
        return f"run `opsready deploy ramp --stop {where}`{restore}"

    def _aborted(self) -> _End:
        assert self._abort is not None
        return "aborted", f"aborted by {self._abort.by}: {self._abort.reason}"

    def _check_decision(self, decision: ApprovalDecision) -> None:
        """ValueError saying why `decision` cannot be taken now."""
        state, approval = self._state, self._state.approval
        if state.is_terminal:
            raise ValueError(f"the rollout has already ended ({state.status})")
        if self._decision is not None:
            raise ValueError(f"the approval was already decided by {self._decision.approver}")
        if approval is None or state.status != "awaiting_approval":
            raise ValueError(f"the rollout is not waiting for an approval ({state.status})")
        if decision.request_id not in (None, approval.request_id):
            raise ValueError(
                f"unknown or stale approval request {decision.request_id}; "
                f"pending: {approval.request_id}"
            )
        if decision.approver not in self._request.approvers:
            raise ValueError(
                f"{decision.approver} may not approve this rollout; approvers: "
                f"{', '.join(self._request.approvers)}"
            )

    # --- visibility -----------------------------------------------------------------------

    def _set_status(self, status: RolloutStatus) -> None:
        self._state.status = status
        self._publish()

    def _publish(self) -> None:
        workflow.upsert_memo(visibility.rollout_memo(self._state))
        workflow.set_current_details(visibility.rollout_details(self._state))
