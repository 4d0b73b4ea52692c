"""The activities of `CanaryRollout`: move a flag's traffic or a Worker Deployment's ramp,
and judge the cohorts' health.

`rollout.set_percent` writes through the flag store (the local flag file, or LaunchDarkly when
LAUNCHDARKLY_API_TOKEN is set); `rollout.set_deployment_ramp` changes a Worker Deployment's
routing with the worker's own Temporal client; `rollout.compare_cohorts` reads the cohorts'
runs from Temporal visibility, the source every worker shares (or any `CohortSource`, such
as one host's `OutcomeStore`).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from opsready.deployment import (
    DeploymentStatus,
    RoutingChange,
    WorkerDeployment,
    control_build_of,
    ramp_refusal,
)
from opsready.errors import DeploymentNotFoundError, UnknownBuildError
from opsready.flags import (
    FlagChangeError,
    FlagInfo,
    FlagNotFoundError,
    FlagStore,
    flag_store,
)
from opsready.settings import Settings
from opsready.slo.source import VisibilitySliSource
from workflows.contract import Activity, ErrorType
from workflows.rollout_types import (
    Cohort,
    CohortComparison,
    CohortStats,
    CompareCohortsInput,
    SetDeploymentRampInput,
    SetDeploymentRampResult,
    SetRolloutInput,
    SetRolloutResult,
)

log = structlog.get_logger("opsready.rollout")


def _refused(message: str) -> ApplicationError:
    """A rollout the flag cannot take: retrying will not help, the request must change."""
    return ApplicationError(message, type=ErrorType.INVALID_ROLLOUT, non_retryable=True)


def control_of(info: FlagInfo, candidate: int) -> int:
    """The variation the candidate is measured against: what everyone is served now. A
    split of the candidate and one other variation (this rollout's own earlier write, seen
    by a retry) names that other one."""
    if info.fallthrough_variation is not None and info.fallthrough_variation != candidate:
        return info.fallthrough_variation
    others = [i for i, pct in (info.rollout or {}).items() if i != candidate and pct > 0]
    if len(others) == 1 and set(info.rollout or {}) <= {candidate, others[0]}:
        return others[0]
    raise _refused(
        f"cannot tell the control variation of {info.key}: it serves {info.serving()}; "
        "name it (--control N)"
    )


class CohortSource(Protocol):
    async def cohort_stats(self, cohort: Cohort) -> CohortStats: ...


class RolloutActivities:
    def __init__(
        self,
        settings: Settings,
        cohorts: CohortSource | None = None,
        flags: FlagStore | None = None,
        client: Client | None = None,
    ) -> None:
        self._settings = settings
        self._cohorts = cohorts  # None: Temporal visibility, with the worker's own client
        self._flags = flags  # None: the settings' store, opened per call
        self._client = client  # None: the worker's own client (`activity.client()`)

    @activity.defn(name=Activity.ROLLOUT_SET_PERCENT)
    async def set_percent(self, request: SetRolloutInput) -> SetRolloutResult:
        """Serve the candidate to `percent`% and the control to the rest. A rollback (0%) of a
        flag someone has turned off leaves it off: it then serves its off variation anyway."""
        store = self._flags or flag_store(self._settings)
        try:
            return await self._set_percent(store, request)
        except (FlagNotFoundError, FlagChangeError) as err:
            raise _refused(str(err)) from None
        finally:
            if self._flags is None:
                await store.aclose()

    async def _set_percent(self, store: FlagStore, request: SetRolloutInput) -> SetRolloutResult:
        flag, candidate, percent = request.flag, request.candidate_variation, request.percent
        info = await store.get_flag(flag)
        if not 0 <= candidate < len(info.variations):
            raise _refused(f"{flag} has no variation {candidate} ({len(info.variations)} exist)")
        control = request.control_variation
        if control is None:
            control = control_of(info, candidate)
        if control == candidate:
            raise _refused(f"the candidate and control of {flag} are both variation {candidate}")
        if not info.on and percent > 0:
            raise _refused(f"{flag} is off (it serves {info.serving()}); turn it on first")
        if info.on:
            info = await store.set_rollout(flag, {control: 100 - percent, candidate: percent})
        else:
            # The store can only change the default rule by turning the flag on; an operator
            # turned it off, so that wins, and turning it on again brings back this split.
            log.warning(
                "rollback of an off flag: left off, its default rule unchanged",
                flag=flag,
                serving_when_on=info.rollout or info.fallthrough_variation,
            )
        log.info(
            "rollout set",
            flag=flag,
            candidate=candidate,
            control=control,
            percent=percent,
            serving=info.serving(),
            version=info.version,
        )
        rollout = info.rollout or (
            {info.fallthrough_variation: 100.0} if info.fallthrough_variation is not None else {}
        )
        return SetRolloutResult(
            flag=flag,
            version=info.version,
            candidate_variation=candidate,
            control_variation=control,
            percent=percent,
            rollout=rollout,
        )

    @activity.defn(name=Activity.ROLLOUT_SET_DEPLOYMENT_RAMP)
    async def set_deployment_ramp(self, request: SetDeploymentRampInput) -> SetDeploymentRampResult:
        """Send `percent`% of the deployment's new runs to the candidate build (a ramp off the
        control, which must be current); 100 makes the candidate current; 0 removes its ramp,
        and makes the control current again if the candidate had become current. Each call
        reads the routing first, so a retry after a lost reply does the same thing again."""
        deployment = WorkerDeployment(self._client or activity.client(), request.deployment)
        try:
            status = await deployment.status(count_runs=False)
            control = control_build_of(status, request.candidate_build, request.control_build)
            if request.percent <= 0:
                change = await end_ramp(deployment, status, request.candidate_build, control)
            elif request.percent >= 100:
                change = await deployment.set_current(request.candidate_build)
            else:
                refusal = ramp_refusal(status, request.candidate_build, control)
                if refusal is not None:
                    raise _refused(refusal)
                change = await deployment.ramp(request.candidate_build, request.percent)
        except (DeploymentNotFoundError, UnknownBuildError) as err:
            raise _refused(str(err)) from None
        after = change.after
        log.info(
            "deployment ramp set",
            deployment=request.deployment,
            candidate=request.candidate_build,
            control=control,
            percent=request.percent,
            current=after.current,
            ramping=after.ramping,
            ramp_percentage=after.ramp_percentage,
        )
        return SetDeploymentRampResult(
            deployment=request.deployment,
            candidate_build=request.candidate_build,
            control_build=control,
            percent=request.percent,
            current=after.current,
            ramping=after.ramping,
            ramp_percentage=after.ramp_percentage,
        )

    @activity.defn(name=Activity.ROLLOUT_COMPARE_COHORTS)
    async def compare_cohorts(self, request: CompareCohortsInput) -> CohortComparison:
        source = self._cohorts or VisibilitySliSource(self._client or activity.client())
        candidate, control = await asyncio.gather(
            source.cohort_stats(request.candidate), source.cohort_stats(request.control)
        )
        return CohortComparison(candidate=candidate, control=control)


# --- Worker Deployment ramps -------------------------------------------------------------


async def end_ramp(
    deployment: WorkerDeployment, status: DeploymentStatus, candidate: str, control: str | None
) -> RoutingChange:
    """New runs back to the control: the candidate's ramp goes, and if it had become current,
    the control is made current again. Another build's ramp is not this rollout's to end."""
    if status.current == candidate:
        if control is None:
            raise _refused(
                f"{candidate} is current in {deployment.name} and the build to go back to is "
                f"unknown: choose one (opsready deploy set-current BUILD --deployment "
                f"{deployment.name})"
            )
        return await deployment.set_current(control)
    if status.ramping == candidate:
        return await deployment.stop_ramp()
    return RoutingChange(deployment=deployment.name, before=status.routing, after=status.routing)
