"""Worker Deployment Versioning for operators, service code and the rollout activity: which
build of the workers new agent runs go to (current, ramping) and which builds still serve
their pinned runs. Shared by the `opsready deploy` commands and the rollout activity.

Temporal's Python client has no high-level Worker Deployment API, so `WorkerDeployment`
wraps the workflow-service RPCs. Every write reads the deployment first and passes its
conflict token, so two operators (or an operator and a starting worker) never overwrite each
other's change unseen; every user mistake raises an `OpsreadyError` with one line.
"""

from opsready.deployment._service import WorkerDeployment
from opsready.deployment._status import (
    DeploymentStatus,
    DeploymentVersion,
    Routing,
    RoutingChange,
    control_build_of,
    previous_version,
    ramp_refusal,
)

__all__ = [
    "DeploymentStatus",
    "DeploymentVersion",
    "Routing",
    "RoutingChange",
    "WorkerDeployment",
    "control_build_of",
    "previous_version",
    "ramp_refusal",
]
