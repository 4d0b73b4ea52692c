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
# Entity workflows: one per quota scope, per guarded provider or tool, per side effect.
QUOTA_LEDGER_WORKFLOW = "QuotaLedger"
CIRCUIT_BREAKER_WORKFLOW = "CircuitBreaker"
SIDE_EFFECT_WORKFLOW = "SideEffect"
DEFAULT_TASK_QUEUE = "opsready-agents"
SHADOW_VARIANT = "shadow"  # the `AgentVariant` of shadow twins: never counted in SLIs
# The memo key under which a finished `AgentRun` keeps its outcome (a `RunOutcome`).
OUTCOME_MEMO = "outcome"


def quota_ledger_id(task_queue: str, kind: str, scope_id: str) -> str:
    """`quota:<task queue>:<kind>:<id>`: a scope's ledger lives with the workers of its queue."""
    return f"quota:{task_queue}:{kind}:{scope_id}"


def breaker_id(task_queue: str, name: str) -> str:
    """`breaker:<task queue>:<name>`, name `model:<provider>` or `tool:<tool>`."""
    return f"breaker:{task_queue}:{name}"


def side_effect_id(task_queue: str, key: str) -> str:
    """`effect:<task queue>:<idempotency key>`: the shared record of one side effect."""
    return f"effect:{task_queue}:{key}"


def activity_queue(task_queue: str, name: str) -> str:
    """The task queue of a rate-limited provider or tool (`model:openai` -> `Q.model.openai`)."""
    return f"{task_queue}.{name.replace(':', '.')}"


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
    """Updates: the signals' confirmed twins (validated, answered with the new state), the
    Incident's, and those of the controls' entity workflows."""

    DECIDE = "decide"
    # Incident: a person acknowledges, notes, runs a runbook step, resolves; a repeated
    # alert joins the open incident.
    ACK = "ack"
    NOTE = "note"
    RUN_STEP = "run_step"
    RESOLVE = "resolve"
    JOIN = "join"
    HALT = "halt"
    QUOTA_APPLY = "apply"  # QuotaLedger: open/reserve/commit/release/close for one run
    QUOTA_SET_LIMITS = "set_limits"  # QuotaLedger: an operator's limits
    QUOTA_RESET = "reset"  # QuotaLedger: spend of the current windows back to zero
    BREAKER_ACQUIRE = "acquire"  # CircuitBreaker: may a call go (a probe, when half-open)?
    BREAKER_RESET = "reset_breaker"  # CircuitBreaker: closed now, window cleared
    EFFECT_BEGIN = "begin"  # SideEffect: the intent, before the call
    EFFECT_COMPLETE = "complete"  # SideEffect: the result, after it


class EntitySignal(StrEnum):
    BREAKER_RECORD = "record"  # CircuitBreaker: call outcomes, batched by each worker


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
    QUOTA_APPLY = "opsready.quota.apply"
    ANSWER_CACHE_LOOKUP = "opsready.answer_cache.lookup"
    ANSWER_CACHE_STORE = "opsready.answer_cache.store"
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
    # Controls.
    CIRCUIT_OPEN = "CircuitOpen"  # the provider's or tool's breaker is open: fail fast


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
    QUOTA_EXCEEDED = "quota_exceeded"
    QUOTA_UNCHECKED = "quota_unchecked"
    CIRCUIT_OPEN = "circuit_open"
    ARGUMENT_LIMIT = "argument_limit"


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
# Why a run that did not complete ended (its `StopReason`; `kill_switch` also when the
# kill-switch listener's halt stopped it): `AgentStopReason='kill_switch'` lists what a kill
# switch stopped. Set with the last upsert of runs recorded from patch `stop-reason-attribute`.
AGENT_STOP_REASON = SearchAttributeKey.for_keyword("AgentStopReason")
# Who the kill-switch listener's halts are from (`HaltRequest.by`).
KILL_SWITCH_HALTER = "kill-switch"
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
    AGENT_STOP_REASON,
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
