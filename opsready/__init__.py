"""opsready: run AI agents in production on Temporal, with the controls an operator needs.

The public facade for service code:

    from opsready import OpsreadyClient, RunStatus
"""

from opsready.client import OpsreadyClient, RunSummary
from opsready.errors import (
    ConfigError,
    NotAwaitingApprovalError,
    OpsreadyError,
    RunEndedError,
    RunNotFoundError,
    TemporalUnavailableError,
    UnknownAgentError,
)
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
    "HaltRequest",
    "NotAwaitingApprovalError",
    "OpsreadyClient",
    "OpsreadyError",
    "RunEndedError",
    "RunNotFoundError",
    "RunStatus",
    "RunSummary",
    "Settings",
    "StopReason",
    "TemporalUnavailableError",
    "UnknownAgentError",
]
