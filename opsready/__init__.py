"""opsready: run AI agents in production on Temporal, with the controls an operator needs.

The public facade for service code; everything else is reached through these names:

    from opsready import OpsreadyClient, RunStatus, Settings

    client = await OpsreadyClient.connect(Settings.from_env())
    run_id = await client.start_run("support-triage", text, request_id=req_id)
    state = await client.wait_for_status(
        run_id, RunStatus.AWAITING_APPROVAL, RunStatus.COMPLETED, timeout=120
    )
    if state.status is RunStatus.AWAITING_APPROVAL:
        await client.approve(run_id, "alice", request_id=state.pending_approvals[0].request_id)

- The client: `OpsreadyClient` (start, state, wait_for_status / wait_for_approval,
  approve/reject, halt, list, result, pending_calls), `RunSummary` (one row of
  `list_runs`), `PendingCall` (a model or tool call in flight or retrying), `Settings`
  (`Settings.from_env()`).
- Wiring your own Temporal client: `OpsreadyPlugin`
  (`Client.connect(address, plugins=[OpsreadyPlugin()])`: converter, tracing, sandbox).
- The run's types: `AgentRunRequest` in, `AgentRunState` (the `state` query) while it
  runs, `AgentRunResult` at the end; `RunStatus` and `StopReason` say where it stands and
  why it ended; `PendingApproval` (what waits for a decision), `ApprovalRecord` (a decision
  made), `ToolCallRecord` (a tool call and its outcome); `ApprovalDecision` and
  `HaltRequest` are what `decide` and `halt` carry.
- Errors: every mistake a caller can make raises an `OpsreadyError` subclass with a
  one-line message and an exit code; the tree is documented in `opsready.errors`.
"""

from opsready.client import OpsreadyClient
from opsready.errors import (
    ConfigError,
    DeploymentChangedError,
    DeploymentError,
    DeploymentNotFoundError,
    FlagChangeError,
    FlagNotFoundError,
    LaunchDarklyError,
    LaunchDarklyUnavailableError,
    NoPreviousVersionError,
    NotAwaitingApprovalError,
    NoWorkerError,
    OpsreadyError,
    RequestIdReusedError,
    RunEndedError,
    RunNotFoundError,
    TemporalUnavailableError,
    UnknownAgentError,
    UnknownBuildError,
    UnknownVersionError,
)
from opsready.plugin import OpsreadyPlugin
from opsready.run_workers import PendingCall
from opsready.runs import RunSummary
from opsready.settings import Settings
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalDecision,
    ApprovalRecord,
    HaltRequest,
    PendingApproval,
    RunStatus,
    StopReason,
    ToolCallRecord,
)

__version__ = "0.1.0"

__all__ = [
    "AgentRunRequest",
    "AgentRunResult",
    "AgentRunState",
    "ApprovalDecision",
    "ApprovalRecord",
    "ConfigError",
    "DeploymentChangedError",
    "DeploymentError",
    "DeploymentNotFoundError",
    "FlagChangeError",
    "FlagNotFoundError",
    "HaltRequest",
    "LaunchDarklyError",
    "LaunchDarklyUnavailableError",
    "NoPreviousVersionError",
    "NoWorkerError",
    "NotAwaitingApprovalError",
    "OpsreadyClient",
    "OpsreadyError",
    "OpsreadyPlugin",
    "PendingApproval",
    "PendingCall",
    "RequestIdReusedError",
    "RunEndedError",
    "RunNotFoundError",
    "RunStatus",
    "RunSummary",
    "Settings",
    "StopReason",
    "TemporalUnavailableError",
    "ToolCallRecord",
    "UnknownAgentError",
    "UnknownBuildError",
    "UnknownVersionError",
]
