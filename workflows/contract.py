"""The one home of every public name opsready's workflows answer to.

Workflow types, signals, queries, updates, activity names, error types, search attributes,
the task queue, safety-event kinds and kill-switch keys. Recorded histories, the Temporal UI,
the `temporal` CLI and service code all depend on these strings: renaming one breaks
replay or callers, so they are spelled here once and referred to everywhere else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from temporalio.common import SearchAttributeKey

# --- workflow types and the task queue ------------------------------------------------------

AGENT_RUN_WORKFLOW = "AgentRun"
ROLLOUT_WORKFLOW = "CanaryRollout"
DEFAULT_TASK_QUEUE = "opsready-agents"
# The memo key under which a finished `AgentRun` keeps its outcome (a `RunOutcome`).
OUTCOME_MEMO = "outcome"


class Query(StrEnum):
    STATE = "state"


class Signal(StrEnum):
    APPROVAL_DECISION = "approval_decision"
    HALT = "halt"
    ABORT = "abort"  # CanaryRollout: roll back now
    PRODUCTION_RESULT = "production_result"  # internal: a production run to its shadow twin


class Update(StrEnum):
    DECIDE = "decide"


# --- activities -----------------------------------------------------------------------------


class Activity(StrEnum):
    """Stable activity names: workflows call activities by these, never by importing the
    implementations, and workers register the implementations under them."""

    RESOLVE_CONFIG = "opsready.config.resolve"
    MODEL_CHAT = "opsready.model.chat"
    TOOL_RUN = "opsready.tool.run"
    NOTIFY_APPROVERS = "opsready.approval.notify"
    RECORD_OUTCOME = "opsready.outcome.record"
    CHECK_KILL_SWITCH = "opsready.flags.kill_switch"
    COMPARE_SHADOW = "opsready.shadow.compare"
    ROLLOUT_SET_PERCENT = "rollout.set_percent"
    ROLLOUT_COMPARE_COHORTS = "rollout.compare_cohorts"
    ROLLOUT_SET_DEPLOYMENT_RAMP = "rollout.set_deployment_ramp"


class ErrorType(StrEnum):
    """`ApplicationError.type` values activities raise; workflows read them from failures.
    The non-retryable ones are those retrying cannot fix."""

    UNKNOWN_AGENT = "UnknownAgent"
    INVALID_AGENT_DEFINITION = "InvalidAgentDefinition"
    UNKNOWN_TOOL = "UnknownTool"
    INVALID_ROLLOUT = "InvalidRollout"  # unknown flag, variation, deployment or build
    # Model providers.
    MODEL_REQUEST_REJECTED = "ModelRequestRejected"
    UNKNOWN_MODEL_PROVIDER = "UnknownModelProvider"
    MODEL_RATE_LIMITED = "ModelRateLimited"
    MODEL_SERVER_ERROR = "ModelServerError"
    MODEL_TIMEOUT = "ModelTimeout"
    MODEL_CONNECTION = "ModelConnectionError"
    MODEL_BAD_RESPONSE = "ModelBadResponse"


# --- safety events --------------------------------------------------------------------------


class SafetyKind(StrEnum):
    """What a safety event in a run's state says happened (also its metric label)."""

    FLAGS_DEGRADED = "flags_degraded"
    FLAGS_DEGRADED_REFUSAL = "flags_degraded_refusal"
    KILL_SWITCH = "kill_switch"
    KILL_SWITCH_UNCHECKED = "kill_switch_unchecked"
    EMPTY_ANSWER = "empty_answer"
    MODEL_FALLBACK = "model_fallback"
    INVALID_TOOL_CALL = "invalid_tool_call"
    TOOL_REFUSED = "tool_refused"
    TOOL_FAILED = "tool_failed"
    APPROVAL_ESCALATED = "approval_escalated"
    INVALID_APPROVAL = "invalid_approval"
    NOTIFICATION_FAILED = "notification_failed"
    SHADOW_NOT_STARTED = "shadow_not_started"


# --- kill switches --------------------------------------------------------------------------

KILL_SWITCH = "kill-switch"
KillSwitchScope = Literal["global", "agent", "tool"]


def kill_switch_key(agent: str | None = None, tool: str | None = None) -> str:
    """`kill-switch` (everything), `kill-switch.agent.<agent>` or `kill-switch.tool.<tool>`."""
    if agent is not None and tool is not None:
        raise ValueError("a kill switch covers everything, one agent or one tool, not both")
    if agent is not None:
        return f"{KILL_SWITCH}.agent.{agent}"
    if tool is not None:
        return f"{KILL_SWITCH}.tool.{tool}"
    return KILL_SWITCH


def kill_switch_scope(key: str) -> KillSwitchScope | None:
    """Which scope a flag key switches off, or None when it is not a kill switch."""
    if key == KILL_SWITCH:
        return "global"
    if key.startswith(f"{KILL_SWITCH}.agent.") and key != f"{KILL_SWITCH}.agent.":
        return "agent"
    if key.startswith(f"{KILL_SWITCH}.tool.") and key != f"{KILL_SWITCH}.tool.":
        return "tool"
    return None


# --- search attributes ----------------------------------------------------------------------

AGENT_NAME = SearchAttributeKey.for_keyword("AgentName")
AGENT_STATUS = SearchAttributeKey.for_keyword("AgentStatus")
AGENT_USER = SearchAttributeKey.for_keyword("AgentUser")
AGENT_TENANT = SearchAttributeKey.for_keyword("AgentTenant")
AGENT_VARIANT = SearchAttributeKey.for_keyword("AgentVariant")
AGENT_COST_USD = SearchAttributeKey.for_float("AgentCostUsd")
AGENT_TOKENS = SearchAttributeKey.for_int("AgentTokens")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    AGENT_NAME,
    AGENT_STATUS,
    AGENT_USER,
    AGENT_TENANT,
    AGENT_VARIANT,
    AGENT_COST_USD,
    AGENT_TOKENS,
)

# The type word the `temporal` CLI's --search-attribute flag takes, per indexed value type.
_CLI_TYPE_WORDS = {"KEYWORD": "Keyword", "DOUBLE": "Double", "INT": "Int", "TEXT": "Text"}
CLI_TYPES: dict[str, str] = {
    key.name: _CLI_TYPE_WORDS[key.indexed_value_type.name] for key in SEARCH_ATTRIBUTES
}
