"""Worker Deployment Versioning for operators and service code: which build of the workers
new agent runs go to (current, ramping) and which builds still serve their pinned runs.

The implementation lives in `opsready.deployment`, shared with the rollout activity
(activities do not import starters); this module is its public name.
"""

from opsready.deployment import (
    POLL_SECONDS,
    DeploymentChangedError,
    DeploymentError,
    DeploymentNotFoundError,
    DeploymentStatus,
    DeploymentVersion,
    NoPreviousVersionError,
    Routing,
    RoutingChange,
    UnknownBuildError,
    WorkerDeployment,
    previous_version,
)

__all__ = [
    "POLL_SECONDS",
    "DeploymentChangedError",
    "DeploymentError",
    "DeploymentNotFoundError",
    "DeploymentStatus",
    "DeploymentVersion",
    "NoPreviousVersionError",
    "Routing",
    "RoutingChange",
    "UnknownBuildError",
    "WorkerDeployment",
    "previous_version",
]
