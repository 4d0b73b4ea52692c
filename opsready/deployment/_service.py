"""`WorkerDeployment`: one Worker Deployment through the workflow-service RPCs (the Python
client has no high-level API for them). Every write reads the deployment first and passes
its conflict token; every user mistake is an `OpsreadyError` with one line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.api.enums.v1 import RoutingConfigUpdateState
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    DescribeWorkerDeploymentResponse,
    ListWorkerDeploymentsRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from opsready.deployment._status import (
    DeploymentStatus,
    Routing,
    RoutingChange,
    epoch,
    previous_version,
    version_of,
)
from opsready.errors import (
    DeploymentChangedError,
    DeploymentError,
    DeploymentNotFoundError,
    NoPreviousVersionError,
    OpsreadyError,
    TemporalUnavailableError,
    UnknownBuildError,
)
from workflows.contract import AGENT_RUN_WORKFLOW

T = TypeVar("T")
POLL_SECONDS = 0.2


async def _patiently(call: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
    """The server refuses bursts of calls on one deployment ("too many requests issued to
    Worker Deployment", RESOURCE_EXHAUSTED), e.g. while several workers start at once;
    such a call did nothing, so it is safe to send again after a pause."""
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + timeout, 0.1
    while True:
        try:
            return await call()
        except RPCError as err:
            if err.status is not RPCStatusCode.RESOURCE_EXHAUSTED or loop.time() > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


def _fail(err: RPCError, doing: str) -> OpsreadyError:
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return TemporalUnavailableError(f"cannot reach Temporal to {doing}: {err.message}")
    if err.status is RPCStatusCode.FAILED_PRECONDITION and "conflict token" in err.message:
        return DeploymentChangedError(
            f"cannot {doing}: the deployment changed meanwhile; run the command again"
        )
    return DeploymentError(f"cannot {doing}: {err.message}")


class WorkerDeployment:
    """One Worker Deployment (`deployment_name` of the workers) in the client's namespace."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name

    @property
    def namespace(self) -> str:
        return self.client.namespace

    # --- reading --------------------------------------------------------------------------

    async def _describe(self) -> DescribeWorkerDeploymentResponse:
        request = DescribeWorkerDeploymentRequest(
            namespace=self.namespace, deployment_name=self.name
        )
        try:
            return await _patiently(
                lambda: self.client.workflow_service.describe_worker_deployment(request)
            )
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise DeploymentNotFoundError(
                    f"no Worker Deployment {self.name!r} in namespace {self.namespace}: no "
                    "versioned worker of it has polled yet (start one with `opsready worker`)"
                ) from None
            raise _fail(err, f"read Worker Deployment {self.name!r}") from None

    def _status(self, described: DescribeWorkerDeploymentResponse) -> DeploymentStatus:
        info = described.worker_deployment_info
        routing = info.routing_config
        current = (
            routing.current_deployment_version.build_id
            if routing.HasField("current_deployment_version")
            else None
        )
        ramping = (
            routing.ramping_deployment_version.build_id
            if routing.HasField("ramping_deployment_version")
            else None
        )
        versions = sorted(
            (version_of(summary) for summary in info.version_summaries),
            key=lambda v: epoch(v.created_at),
            reverse=True,
        )
        return DeploymentStatus(
            deployment=self.name,
            namespace=self.namespace,
            current=current or None,
            ramping=ramping or None,
            ramp_percentage=routing.ramping_version_percentage if ramping else 0.0,
            previous=previous_version(current or None, versions),
            versions=versions,
        )

    async def status(self, *, count_runs: bool = True) -> DeploymentStatus:
        """Routing, every version with its status and drainage, and (with `count_runs`) how
        many open agent runs each version still serves (a visibility count, so eventual)."""
        try:
            status = self._status(await self._describe())
        except DeploymentNotFoundError as err:
            known = ", ".join(await self.names()) or "none"
            raise DeploymentNotFoundError(f"{err}; deployments here: {known}") from None
        if count_runs:
            counts = await asyncio.gather(
                *(self.open_pinned_runs(v.build_id) for v in status.versions)
            )
            for version, count in zip(status.versions, counts, strict=True):
                version.open_pinned_runs = count
        return status

    async def open_pinned_runs(self, build_id: str) -> int | None:
        """Open `AgentRun` runs pinned to this build, by a visibility count (None for a name
        the query language cannot quote)."""
        version = f"{self.name}:{build_id}"
        if "'" in version or "\\" in version:
            return None
        query = (
            f"WorkflowType = '{AGENT_RUN_WORKFLOW}' AND ExecutionStatus = 'Running' "
            "AND TemporalWorkflowVersioningBehavior = 'Pinned' "
            f"AND TemporalWorkerDeploymentVersion = '{version}'"
        )
        try:
            return (await self.client.count_workflows(query)).count
        except RPCError as err:
            raise _fail(err, f"count the runs pinned to {build_id}") from None

    async def names(self) -> list[str]:
        """Every Worker Deployment in the namespace (for error messages and `status`)."""
        request = ListWorkerDeploymentsRequest(namespace=self.namespace, page_size=100)
        try:
            listed = await _patiently(
                lambda: self.client.workflow_service.list_worker_deployments(request)
            )
        except RPCError as err:
            raise _fail(err, "list Worker Deployments") from None
        return sorted(d.name for d in listed.worker_deployments)

    async def wait_for_version(self, build_id: str, timeout: float = 30.0) -> DeploymentStatus:
        """Wait until the server knows this version: it exists only once a worker of it
        has polled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                status = self._status(await self._describe())
                if status.version(build_id) is not None:
                    return status
            except DeploymentNotFoundError:
                pass
            if loop.time() > deadline:
                raise DeploymentError(
                    f"version {self.name}:{build_id} did not reach the server within "
                    f"{timeout:g}s: is its worker polling, and does the server support "
                    "Worker Deployments?"
                )
            await asyncio.sleep(POLL_SECONDS)

    # --- routing --------------------------------------------------------------------------

    def _require(self, status: DeploymentStatus, build_id: str) -> None:
        if status.version(build_id) is None:
            known = ", ".join(v.build_id for v in status.versions) or "none"
            raise UnknownBuildError(
                f"unknown build id {build_id!r} in Worker Deployment {self.name!r}; its "
                f"versions: {known} (a version appears once its worker polls)"
            )

    async def set_current(self, build_id: str) -> RoutingChange:
        """Send every new run (and, when it ramps, stop the ramp of this version) to
        `build_id`. Runs pinned to other versions finish where they are."""
        described = await self._describe()
        before = self._status(described)
        self._require(before, build_id)
        if before.current != build_id:
            await self._set_current(build_id, described.conflict_token)
        return await self._change(before.routing)

    async def set_current_if_none(self, build_id: str) -> RoutingChange:
        """Make `build_id` current only when the deployment never had a current version
        (a first deploy). An operator's choice, unversioned included, is never changed."""
        for _ in range(3):
            described = await self._describe()
            before = self._status(described)
            self._require(before, build_id)
            routing = described.worker_deployment_info.routing_config
            if before.current is not None or routing.HasField("current_version_changed_time"):
                return RoutingChange(
                    deployment=self.name, before=before.routing, after=before.routing
                )
            try:
                await self._set_current(build_id, described.conflict_token)
            except DeploymentChangedError:
                continue  # another worker made its version current first: read again
            return await self._change(before.routing)
        raise DeploymentError(f"Worker Deployment {self.name!r} keeps changing; try again")

    async def ramp(self, build_id: str, percentage: float) -> RoutingChange:
        """Send `percentage` % of new runs to `build_id`, the rest to the current version."""
        if not 0 < percentage < 100:
            raise DeploymentError(
                f"ramp percentage must be above 0 and below 100, not {percentage:g}: "
                "`deploy set-current` sends every new run, `deploy ramp --stop` none"
            )
        described = await self._describe()
        before = self._status(described)
        self._require(before, build_id)
        if before.current == build_id:
            raise DeploymentError(f"{build_id} is already current: every new run goes to it")
        await self._set_ramping(build_id, percentage, described.conflict_token)
        return await self._change(before.routing)

    async def stop_ramp(self) -> RoutingChange:
        """New runs all go to the current version again."""
        described = await self._describe()
        before = self._status(described)
        if before.ramping is not None or before.ramp_percentage:
            await self._set_ramping("", 0.0, described.conflict_token)
        return await self._change(before.routing)

    async def rollback(self) -> RoutingChange:
        """Send new runs back to the version that was current before the present one, at
        once, and remove any ramp. When no version was current before and a ramp is on,
        removing the ramp is the rollback (new runs go back to the current version)."""
        described = await self._describe()
        before = self._status(described)
        token = described.conflict_token
        if before.previous is None:
            if before.ramping is None:
                raise NoPreviousVersionError(self._no_previous(before))
            await self._set_ramping("", 0.0, token)
            return await self._change(before.routing)
        token = await self._set_current(before.previous, token)
        # Making the ramping version current ends its ramp; any other ramp goes now.
        if before.ramping is not None and before.ramping != before.previous:
            await self._set_ramping("", 0.0, token)
        return await self._change(before.routing)

    def _no_previous(self, status: DeploymentStatus) -> str:
        others = [v.build_id for v in status.versions if v.build_id != status.current]
        if len(others) == 1:
            hint = f"to use the other version, run `opsready deploy set-current {others[0]}`"
        elif others:
            hint = f"choose one: `opsready deploy set-current BUILD` ({', '.join(others)})"
        else:
            hint = "there is no other version to go back to"
        return (
            f"no version of Worker Deployment {self.name!r} was current before "
            f"{status.current or 'the unversioned workers'}: {hint}"
        )

    async def _set_current(self, build_id: str, token: bytes) -> bytes:
        request = SetWorkerDeploymentCurrentVersionRequest(
            namespace=self.namespace,
            deployment_name=self.name,
            build_id=build_id,
            conflict_token=token,
            identity=self.client.identity,
        )
        try:
            response = await _patiently(
                lambda: self.client.workflow_service.set_worker_deployment_current_version(request)
            )
        except RPCError as err:
            raise _fail(err, f"make {build_id} current") from None
        return response.conflict_token

    async def _set_ramping(self, build_id: str, percentage: float, token: bytes) -> bytes:
        request = SetWorkerDeploymentRampingVersionRequest(
            namespace=self.namespace,
            deployment_name=self.name,
            build_id=build_id,
            percentage=percentage,
            conflict_token=token,
            identity=self.client.identity,
        )
        doing = f"ramp {build_id} to {percentage:g}%" if build_id else "remove the ramp"
        try:
            response = await _patiently(
                lambda: self.client.workflow_service.set_worker_deployment_ramping_version(request)
            )
        except RPCError as err:
            raise _fail(err, doing) from None
        return response.conflict_token

    async def _change(self, before: Routing, timeout: float = 10.0) -> RoutingChange:
        """The routing after a change, once it has reached every task queue (so the next
        run started already follows it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            described = await self._describe()
            state = described.worker_deployment_info.routing_config_update_state
            if (
                state != RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS
                or loop.time() > deadline
            ):
                after = self._status(described).routing
                return RoutingChange(deployment=self.name, before=before, after=after)
            await asyncio.sleep(POLL_SECONDS)
