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
SLO_MONITOR_WORKFLOW = "SloMonitor"
SLO_MONITOR_SCHEDULE = "opsready-slo-monitor"  # the Schedule that starts SloMonitor
INCIDENT_WORKFLOW = "Incident"
DEFAULT_TASK_QUEUE = "opsready-agents"
SHADOW_VARIANT = "shadow"  # the `AgentVariant` of shadow twins: never counted in SLIs
# The memo key under which a finished `AgentRun` keeps its outcome (a `RunOutcome`).
OUTCOME_MEMO = "outcome"


class Query(StrEnum):
    STATE = "state"


class Signal(StrEnum):
    """Signals for people: `approval_decision`, `halt` (AgentRun) and `abort` (CanaryRollout),
    listed in the Temporal UI's Signal form. `production_result` is internal (a production
    run to its shadow twin) and registered only on shadow runs, so the UI offers it nowhere
    else."""

    APPROVAL_DECISION = "approval_decision"
    HALT = "halt"
    ABORT = "abort"  # CanaryRollout: roll back now
    PRODUCTION_RESULT = "production_result"  # internal: a production run to its shadow twin


class Update(StrEnum):
    """Updates: the signals' confirmed twins (validated, answered with the new state)."""

    DECIDE = "decide"
    # Incident: a person acknowledges, notes, runs a runbook step, resolves; a repeated
    # alert joins the open incident.
    ACK = "ack"
    NOTE = "note"
    RUN_STEP = "run_step"
    RESOLVE = "resolve"
    JOIN = "join"
    HALT = "halt"


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
    # A halted run asks Temporal to cancel it (so it closes Canceled), its result as input.
    CLOSE_HALTED = "opsready.run.close_halted"
    COMPARE_SHADOW = "opsready.shadow.compare"
    ROLLOUT_SET_PERCENT = "rollout.set_percent"
    ROLLOUT_COMPARE_COHORTS = "rollout.compare_cohorts"
    ROLLOUT_SET_DEPLOYMENT_RAMP = "rollout.set_deployment_ramp"
    SLO_READ_SLIS = "opsready.slo.read_slis"
    SLO_AFFECTED_RUNS = "opsready.slo.affected_runs"
    # Incidents: the SLO monitor opens (or joins) one; the `Incident` workflow does the rest.
    INCIDENT_OPEN = "opsready.incident.open"
    INCIDENT_CONFIG = "opsready.incident.config"
    INCIDENT_NOTIFY = "opsready.incident.notify"
    INCIDENT_RUN_STEP = "opsready.incident.run_step"
    INCIDENT_EVIDENCE = "opsready.incident.evidence"
    INCIDENT_POSTMORTEM = "opsready.incident.postmortem"
    INCIDENT_TIMINGS = "opsready.incident.record_timings"


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
    # Incidents.
    AGENT_PAUSED = "AgentPaused"  # a new run of an agent an incident paused
    INVALID_INCIDENT_CONFIG = "InvalidIncidentConfig"
    PAGE_REJECTED = "PageRejected"  # the pager refused the page: URL, key or format
    RUNBOOK_STEP_FAILED = "RunbookStepFailed"
    # How AgentRun itself fails (the typed AgentRunResult is the failure's first detail).
    RUN_FAILED = "AgentRunFailed"
    RUN_TIMED_OUT = "AgentRunTimedOut"
    RUN_BUDGET_EXCEEDED = "AgentRunBudgetExceeded"


# --- safety events --------------------------------------------------------------------------


class SafetyKind(StrEnum):
    """What a safety event in a run's state says happened (also its metric label)."""

    FLAGS_DEGRADED = "flags_degraded"
    FLAGS_DEGRADED_REFUSAL = "flags_degraded_refusal"
    KILL_SWITCH = "kill_switch"
    KILL_SWITCH_UNCHECKED = "kill_switch_unchecked"
    KILL_SWITCH_UNKNOWN = "kill_switch_unknown"  # a worker's listener cannot read the switches
    EMPTY_ANSWER = "empty_answer"
    MODEL_FALLBACK = "model_fallback"
    INVALID_TOOL_CALL = "invalid_tool_call"
    TOOL_REFUSED = "tool_refused"
    TOOL_FAILED = "tool_failed"
    APPROVAL_ESCALATED = "approval_escalated"
    INVALID_APPROVAL = "invalid_approval"
    INVALID_SIGNAL = "invalid_signal"  # a signal whose payload could not be read
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


# --- pausing agents --------------------------------------------------------------------------

# A JSON list of agent names whose new runs are refused (an incident's `pause_agent` step);
# runs already open go on. The kill switch is the control that also stops open runs.
PAUSED_AGENTS_FLAG = "paused-agents"


# --- search attributes ----------------------------------------------------------------------

AGENT_NAME = SearchAttributeKey.for_keyword("AgentName")
AGENT_STATUS = SearchAttributeKey.for_keyword("AgentStatus")
AGENT_USER = SearchAttributeKey.for_keyword("AgentUser")
AGENT_TENANT = SearchAttributeKey.for_keyword("AgentTenant")
AGENT_VARIANT = SearchAttributeKey.for_keyword("AgentVariant")
AGENT_COST_USD = SearchAttributeKey.for_float("AgentCostUsd")
AGENT_TOKENS = SearchAttributeKey.for_int("AgentTokens")
# Written when a run ends, for SLIs counted over visibility (workflows/sli_types.py):
# start-to-end seconds (across continue-as-new), the worker build, and per-run tallies and
# flag variations as keyword lists, so `count_workflows` can select on them.
AGENT_LATENCY_SECONDS = SearchAttributeKey.for_float("AgentLatencySeconds")
AGENT_BUILD_ID = SearchAttributeKey.for_keyword("AgentBuildId")
AGENT_TALLIES = SearchAttributeKey.for_keyword_list("AgentTallies")  # "tool_errors>=1", ...
AGENT_FLAG_VARIATIONS = SearchAttributeKey.for_keyword_list("AgentFlagVariations")  # "flag=1"
# Incidents (with AgentName): `IncidentState='open' AND IncidentSeverity='SEV1'`.
INCIDENT_SEVERITY = SearchAttributeKey.for_keyword("IncidentSeverity")
INCIDENT_STATE = SearchAttributeKey.for_keyword("IncidentState")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    AGENT_NAME,
    AGENT_STATUS,
    AGENT_USER,
    AGENT_TENANT,
    AGENT_VARIANT,
    AGENT_COST_USD,
    AGENT_TOKENS,
    AGENT_LATENCY_SECONDS,
    AGENT_BUILD_ID,
    AGENT_TALLIES,
    AGENT_FLAG_VARIATIONS,
    INCIDENT_SEVERITY,
    INCIDENT_STATE,
)

# The type word the `temporal` CLI's --search-attribute flag takes, per indexed value type.
_CLI_TYPE_WORDS = {
    "KEYWORD": "Keyword",
    "DOUBLE": "Double",
    "INT": "Int",
    "TEXT": "Text",
    "KEYWORD_LIST": "KeywordList",
}
CLI_TYPES: dict[str, str] = {
    key.name: _CLI_TYPE_WORDS[key.indexed_value_type.name] for key in SEARCH_ATTRIBUTES
}
