"""opsready: run AI agents in production on Temporal, with the controls an operator needs.

The public facade for service code; everything else is reached through these names:

    from opsready import OpsreadyClient, RunStatus, Settings

    client = await OpsreadyClient.connect(Settings.from_env())
    run_id = await client.start_run("support-triage", text, request_id=req_id)
    if (await client.state(run_id)).status is RunStatus.AWAITING_APPROVAL:
        await client.approve(run_id, "alice")

- The client: `OpsreadyClient` (start, state, approve/reject, halt, list, result),
  `RunSummary` (one row of `list_runs`), `Settings` (`Settings.from_env()`).
- Wiring your own Temporal client: `OpsreadyPlugin`
  (`Client.connect(address, plugins=[OpsreadyPlugin()])`: converter, tracing, sandbox).
- The run's types: `AgentRunRequest` in, `AgentRunState` (the `state` query) while it
  runs, `AgentRunResult` at the end; `RunStatus` and `StopReason` say where it stands and
  why it ended; `ApprovalDecision` and `HaltRequest` are what `decide` and `halt` carry.
- Errors: every mistake a caller can make raises an `OpsreadyError` subclass with a
  one-line message and an exit code; the tree is documented in `opsready.errors`.
"""

from opsready.client import OpsreadyClient, RunSummary
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
    OpsreadyError,
    RunEndedError,
    RunNotFoundError,
    TemporalUnavailableError,
    UnknownAgentError,
    UnknownBuildError,
    UnknownVersionError,
)
from opsready.plugin import OpsreadyPlugin
from opsready.settings import Settings
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalDecision,
    HaltRequest,
    RunStatus,
    StopReason,
)

__version__ = "0.1.0"

__all__ = [
    "AgentRunRequest",
    "AgentRunResult",
    "AgentRunState",
    "ApprovalDecision",
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
    "NotAwaitingApprovalError",
    "OpsreadyClient",
    "OpsreadyError",
    "OpsreadyPlugin",
    "RunEndedError",
    "RunNotFoundError",
    "RunStatus",
    "RunSummary",
    "Settings",
    "StopReason",
    "TemporalUnavailableError",
    "UnknownAgentError",
    "UnknownBuildError",
    "UnknownVersionError",
]
