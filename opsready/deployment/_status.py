"""Worker Deployments as data: routing (current, ramping), each version's status and
drainage, and the rules of a canary ramp (which build is the control, why a ramp cannot
go ahead). Pure functions of what the server described; `_service` does the calls."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel
from temporalio.api.deployment.v1 import WorkerDeploymentInfo
from temporalio.api.enums.v1 import VersionDrainageStatus, WorkerDeploymentVersionStatus

VersionSummary = WorkerDeploymentInfo.WorkerDeploymentVersionSummary


class Routing(BaseModel):
    """Where new runs go: the current build, and a share of them to the ramping build.
    `None` stands for the unversioned workers."""

    current: str | None
    ramping: str | None = None
    ramp_percentage: float = 0.0


class RoutingChange(BaseModel):
    deployment: str
    before: Routing
    after: Routing

    @property
    def is_changed(self) -> bool:
        return self.before != self.after


class DeploymentVersion(BaseModel):
    """One build of the workers, as the server tracks it."""

    build_id: str
    status: str  # current, ramping, draining, drained, inactive, created
    drainage: str | None = None  # draining (pinned runs left) or drained; None while routed
    created_at: datetime | None = None
    last_current_at: datetime | None = None
    open_pinned_runs: int | None = None  # open AgentRun runs pinned to it (None: not counted)


class DeploymentStatus(BaseModel):
    deployment: str
    namespace: str
    current: str | None
    ramping: str | None
    ramp_percentage: float
    previous: str | None  # what `rollback` makes current
    versions: list[DeploymentVersion]

    @property
    def routing(self) -> Routing:
        return Routing(
            current=self.current, ramping=self.ramping, ramp_percentage=self.ramp_percentage
        )

    def version(self, build_id: str) -> DeploymentVersion | None:
        return next((v for v in self.versions if v.build_id == build_id), None)


_STATUS = {
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT: "current",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING: "ramping",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING: "draining",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED: "drained",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE: "inactive",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CREATED: "created",
}
_DRAINAGE = {
    VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINING: "draining",
    VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED: "drained",
}


def _time(stamp: Timestamp | None) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if stamp is not None else None


def version_of(summary: VersionSummary) -> DeploymentVersion:
    drainage = (
        summary.drainage_info.status
        if summary.HasField("drainage_info")
        else VersionDrainageStatus.VERSION_DRAINAGE_STATUS_UNSPECIFIED
    )
    return DeploymentVersion(
        build_id=summary.deployment_version.build_id,
        status=_STATUS.get(summary.status, "unknown"),
        drainage=_DRAINAGE.get(drainage),
        created_at=_time(summary.create_time if summary.HasField("create_time") else None),
        last_current_at=_time(
            summary.last_current_time if summary.HasField("last_current_time") else None
        ),
    )


def previous_version(current: str | None, versions: list[DeploymentVersion]) -> str | None:
    """The version that was current before the present one: of the others, the one that
    became current most recently (only one version is current at a time)."""
    before = [v for v in versions if v.build_id != current and v.last_current_at is not None]
    if not before:
        return None
    return max(before, key=lambda v: epoch(v.last_current_at)).build_id


# --- canary ramps (CanaryRollout's activity, and `opsready rollout start`'s check) ---------


def control_build_of(status: DeploymentStatus, candidate: str, control: str | None) -> str | None:
    """The build the candidate is measured against: as named, else the current build (unless
    that is already the candidate: a retry of the step to 100% that had succeeded)."""
    if control is not None:
        return control
    return status.current if status.current != candidate else None


def ramp_refusal(status: DeploymentStatus, candidate: str, control: str | None) -> str | None:
    """Why ramping `candidate` would not split new runs between it and the control; None
    when the ramp can go ahead."""
    name = status.deployment
    for build in (candidate, control):
        if build is not None and status.version(build) is None:
            known = ", ".join(v.build_id for v in status.versions) or "none"
            return (
                f"unknown build id {build!r} in Worker Deployment {name!r}; its versions: "
                f"{known} (a version appears once its worker polls)"
            )
    if status.current == candidate:
        return f"{candidate} is already the current build of {name}: nothing to ramp"
    if control is None:
        return (
            f"{name} has no current build to compare {candidate} with (new runs go to "
            f"unversioned workers): make one current first (opsready deploy set-current "
            f"BUILD --deployment {name})"
        )
    if status.current != control:
        return (
            f"the control build {control} is not current in {name} (current: "
            f"{status.current or 'unversioned workers'}): a ramp splits new runs between the "
            "current build and the candidate"
        )
    if status.ramping not in (None, candidate):
        return (
            f"build {status.ramping} is ramping in {name} ({status.ramp_percentage:g}%): one "
            f"ramp at a time; stop it first (opsready deploy ramp --stop --deployment {name})"
        )
    return None


def epoch(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0
