"""Worker Deployment Versioning for the worker processes: this build's id, the worker's
deployment config, and the first current version of a fresh deployment.

Each workflow declares its own versioning behavior (`AgentRun` is PINNED: a run finishes on
the build it started on); the worker sets no default, so the SDK refuses a workflow that
forgot to declare one. Which build new runs go to is the operator's call
(`opsready deploy`); a worker only makes its own version current when the deployment has
never had one, so a first `opsready worker` just works. `opsready dev` and the demo, on a
server they started themselves, make theirs current in any case (`take_over_...`).
Workers with OPSREADY_WORKER_VERSIONING=false get `UnversionedWorkflows`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkerDeploymentConfig,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from opsready.deployment import RoutingChange, WorkerDeployment
from opsready.settings import PROJECT_ROOT, Settings

VERSION_TIMEOUT_SECONDS = 30.0


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git, or not a checkout (an installed package)
    return done.stdout.strip()


def source_build_id(root: Path = PROJECT_ROOT) -> str:
    """`<package version>+<git short commit>[-dirty]`, or the package version alone where
    git cannot tell (no git, not a checkout)."""
    try:
        version = importlib.metadata.version("opsready")
    except importlib.metadata.PackageNotFoundError:
        version = "0.0.0"
    commit = _git(root, "rev-parse", "--short", "HEAD")
    if not commit:
        return version
    changes = _git(root, "status", "--porcelain")
    return f"{version}+{commit}" + ("-dirty" if changes else "")


@functools.cache
def _process_build_id() -> str:
    return source_build_id()


def build_id(settings: Settings) -> str:
    """This worker's build id: OPSREADY_BUILD_ID, else derived from the source (once per
    process, so a file edited while the worker runs does not change its identity)."""
    return settings.build_id or _process_build_id()


def deployment_version(settings: Settings) -> WorkerDeploymentVersion:
    return WorkerDeploymentVersion(settings.deployment_name, build_id(settings))


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """The worker's versioning config; None when OPSREADY_WORKER_VERSIONING is off."""
    if not settings.worker_versioning:
        return None
    return WorkerDeploymentConfig(version=deployment_version(settings), use_worker_versioning=True)


class UnversionedWorkflows(Interceptor):
    """Lets a worker without Worker Versioning run workflows that declare a behavior.

    The SDK (temporalio 1.35) reports a workflow's declared behavior (`AgentRun` is PINNED)
    with every workflow task, and the server refuses it from an unversioned worker
    ("versioning behavior cannot be specified without deployment options being set with
    versioned mode"): the run would retry its first task forever. Unversioned there is no
    version to pin to, so the behavior is dropped. `build_worker` adds this interceptor to
    every worker without versioning; tests/integration/test_cli.py runs such workers.
    """

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _DropVersioningBehavior


class _DropVersioningBehavior(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        # The instance read the behavior from @workflow.defn when it created the workflow
        # object, just before this call, and reports it when the activation completes.
        # No public API clears it: the SDK-private attribute is reset (see the class above).
        setattr(workflow._Runtime.current(), "_versioning_behavior", None)  # noqa: B010
        return await self.next.execute_workflow(input)


def is_versioned(config: WorkerDeploymentConfig | None) -> bool:
    return config is not None and config.use_worker_versioning


async def ensure_current_version(
    client: Client, settings: Settings, *, timeout: float = VERSION_TIMEOUT_SECONDS
) -> RoutingChange | None:
    """On a deployment that never had a current version, make this worker's version current;
    leave any existing choice alone. Call it once the worker polls (the version exists on
    the server only then). None when versioning is off."""
    if not settings.worker_versioning:
        return None
    deployment = WorkerDeployment(client, settings.deployment_name)
    await deployment.wait_for_version(build_id(settings), timeout)
    return await deployment.set_current_if_none(build_id(settings))


async def take_over_current_version(
    client: Client, settings: Settings, *, timeout: float = VERSION_TIMEOUT_SECONDS
) -> RoutingChange | None:
    """Make this worker's version current whatever was before. Only for a server this
    process started itself (`opsready dev`, the demo): its persistent database remembers
    yesterday's build, whose worker is gone, and new runs would wait for it forever."""
    if not settings.worker_versioning:
        return None
    deployment = WorkerDeployment(client, settings.deployment_name)
    await deployment.wait_for_version(build_id(settings), timeout)
    return await deployment.set_current(build_id(settings))


def versioning_summary(settings: Settings) -> str:
    """One line for start-up banners: the deployment and build id, or that it is off."""
    if not settings.worker_versioning:
        return "off (OPSREADY_WORKER_VERSIONING=false): unversioned worker"
    return (
        f"{settings.deployment_name}, build {build_id(settings)} "
        "(Worker Versioning: each run stays on the build it started on)"
    )
