"""Configuration and activity payloads of `AgentRun`: what the config activity resolves, what
each activity takes and returns, what continue-as-new carries, and the outcome record.

Shared by the workflow and the activities; service code needs only `workflows.types`. These
models are recorded in histories too (activity inputs and results), so field names are a
contract: a renamed or reshaped field needs a validator that still reads the old shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workflows.contract import KillSwitchScope, kill_switch_scope
from workflows.control_types import (
    AnswerCachePolicy,
    BreakerPolicy,
    GuardrailReport,
    GuardrailSet,
    QuotaPolicy,
)
from workflows.redaction import UserAttribute
from workflows.types import (
    AgentRunRequest,
    AgentRunResult,
    AgentRunState,
    ApprovalRecord,
    Candidate,
    ComparedRun,
    FlagEvaluation,
    PendingApproval,
    RiskTier,
    RunStatus,
    StopReason,
    Usage,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- configuration resolved once per run -------------------------------------------------


class ApprovalRule(_Model):
    """When a tool call needs a human: never, always, or when an argument is over a threshold."""

    mode: Literal["never", "always", "over_threshold"] = "never"
    field: str | None = None
    threshold: float | None = None


class ToolSpec(_Model):
    name: str
    description: str
    parameters: dict[str, Any]
    risk_tier: RiskTier
    timeout_seconds: float = 30.0
    approval: ApprovalRule = Field(default_factory=ApprovalRule)
    # Argument ceilings for this agent (field -> maximum), checked before any approval.
    limits: dict[str, float] = Field(default_factory=dict)


class ApprovalPolicy(_Model):
    approvers: list[str] = Field(default_factory=list)
    escalate_to: list[str] = Field(default_factory=list)
    timeout_seconds: float = 3600.0
    escalation_timeout_seconds: float = 1800.0
    # When flags cannot be evaluated, destructive tools need an approval, or are refused.
    when_flags_unavailable: Literal["require_approval", "refuse"] = "refuse"


class Budgets(_Model):
    max_steps: int = Field(default=8, gt=0)
    max_total_tokens: int = Field(default=50_000, gt=0)
    max_cost_usd: float = Field(default=1.0, gt=0)
    run_timeout_seconds: float = Field(default=24 * 3600.0, gt=0)
    continue_as_new_after_events: int = Field(default=5_000, ge=10)


class ModelPrice(_Model):
    input_per_million_usd: float
    output_per_million_usd: float


class ModelChoice(_Model):
    """One model as one value, from the TOML or a flag to the provider's HTTP call: its name
    `provider/model` (the provider part picks the worker's provider) and its price."""

    model: str = Field(pattern=r"^[^/\s]+/\S+$")  # provider/model
    price: ModelPrice

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The model's name at its provider (what the HTTP call asks for)."""
        return self.model.split("/", 1)[1]


class ModelRetryBudget(_Model):
    """How long a model with a fallback after it may keep failing before the fallback takes
    over: whichever comes first of `max_attempts` failed attempts and `max_seconds` since the
    first attempt (a hanging call is cut there too). The last model of the list gets the
    full model retry policy."""

    max_attempts: int = Field(default=3, ge=1)
    max_seconds: float = Field(default=5.0, gt=0)


class RunConfig(_Model):
    """Everything a run needs, resolved once by an activity and recorded in history."""

    agent: str
    agent_version: str
    config_hash: str
    prompt_version: str
    system_prompt: str
    # The primary model first, then each fallback, tried in order when a call fails for good.
    models: list[ModelChoice] = Field(min_length=1)
    variant: str = "control"
    max_output_tokens: int = 1024
    model_timeout_seconds: float = 60.0
    tools: list[ToolSpec]
    budgets: Budgets
    approval: ApprovalPolicy
    flags: list[FlagEvaluation] = Field(default_factory=list)
    flags_degraded: str | None = None  # why flag defaults were used, when they were
    shadow: Candidate | None = None  # this production run starts a shadow with the candidate
    is_shadow: bool = False
    # Configs recorded before these fields read as the behaviour of their time: the user id
    # shown as it is, and each model with the full model retry policy.
    user_attribute: UserAttribute = "raw"  # how AgentUser shows the user id
    model_retry: ModelRetryBudget | None = None  # each model's budget before its fallback
    # Set when the config activity was asked to check the kill switches (lean runs) and one
    # covering the agent is on or cannot be read: the run is refused before its first model
    # call either way (fail closed).
    kill_switch: KillSwitchCheck | None = None
    # Controls across runs (issue 12); absent in configs recorded before them.
    quotas: QuotaPolicy | None = None
    breakers: BreakerPolicy = Field(default_factory=BreakerPolicy)
    guardrails: GuardrailSet | None = None
    answer_cache: AnswerCachePolicy | None = None
    # Rate-limited providers and tools (`model:<provider>`, `tool:<name>`) -> their queue.
    activity_queues: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _models_from_old_shape(cls, data: Any) -> Any:
        # Configs recorded before `models` (in config activity results and continue-as-new
        # checkpoints) had provider, model, price and an optional fallback_model and
        # fallback_price; the fallback was tried only when both were set.
        if not isinstance(data, dict) or "models" in data or "provider" not in data:
            return data
        old = dict(data)
        models = [{"model": f"{old.pop('provider')}/{old.pop('model')}", "price": old.pop("price")}]
        fallback, fallback_price = old.pop("fallback_model", None), old.pop("fallback_price", None)
        if fallback and fallback_price:
            models.append({"model": fallback, "price": fallback_price})
        return {**old, "models": models}

    @property
    def primary(self) -> ModelChoice:
        return self.models[0]

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)


class ResolveConfigInput(_Model):
    agent: str
    user_id: str | None = None
    tenant_id: str | None = None
    run_id: str | None = None  # for sampling decisions (shadow) that must be stable per run
    shadow: Candidate | None = None  # resolve for a shadow run with this candidate
    check_kill_switch: bool = False  # also check the global and agent switches


# --- model and tool calls ----------------------------------------------------------------


class RunContext(_Model):
    """Who a run is for and which variant it runs: carried on every activity input so
    logs, spans and metrics are correlated without a lookup."""

    user_id: str | None = None
    tenant_id: str | None = None
    variant: str = "control"
    # Which code and definition produced the run (None before config, or unversioned).
    build_id: str | None = None
    agent_version: str | None = None
    config_hash: str | None = None


class KillSwitchInput(_Model):
    agent: str
    tool: str | None = None
    context: RunContext = Field(default_factory=RunContext)


class KillSwitchCheck(_Model):
    is_killed: bool
    flag: str | None = None
    scope: KillSwitchScope | None = None  # what the switch that is on covers
    reason: str | None = None
    # No switch is on, but one could not be read (flag data unavailable or unreadable, a
    # value that is not a boolean): fail closed, `reason` says why.
    is_unknown: bool = False
    # Unknown because the check itself failed (it raised inside the activity that made it):
    # the run records `kill_switch_unchecked` as for a failed check activity.
    is_unchecked: bool = False

    @model_validator(mode="before")
    @classmethod
    def _scope_from_flag(cls, data: Any) -> Any:
        # Checks recorded before `scope` existed name only the flag: derive it, so their
        # histories replay down the same path.
        if isinstance(data, dict) and data.get("scope") is None and data.get("flag"):
            return {**data, "scope": kill_switch_scope(str(data["flag"]))}
        return data


class ToolCallRequest(_Model):
    """A tool call proposed by the model. `error` is set when it cannot be run as proposed."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    review: str | None = None  # a guardrail wants a human to approve this call first


class ChatMessage(_Model):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class ModelCallInput(_Model):
    run_id: str
    agent: str
    step: int
    model: ModelChoice  # the model this call asks (the primary or a fallback)
    prompt_version: str
    messages: list[ChatMessage]
    tools: list[ToolSpec]
    max_output_tokens: int
    context: RunContext = Field(default_factory=RunContext)
    # Set when a fallback follows this model: how long it may keep failing (None: the full
    # model retry policy).
    fallback_after: ModelRetryBudget | None = None
    # Check the global and agent switches before calling the model: no call if one is on;
    # one that cannot be read is reported back (the run is marked `flags_degraded`).
    check_kill_switch: bool = False
    guardrails: GuardrailSet | None = None
    is_input_approved: bool = False  # a human approved the input the checks sent for review
    fallback_from: str | None = None  # the model this call falls back from (span, metric)

    @model_validator(mode="before")
    @classmethod
    def _model_from_old_shape(cls, data: Any) -> Any:
        # Calls scheduled before `model` was a ModelChoice (a retried activity of a run in
        # flight) carried provider, the model's name and its price apart.
        if not isinstance(data, dict) or "provider" not in data:
            return data
        old = dict(data)
        model = {"model": f"{old.pop('provider')}/{old.pop('model')}", "price": old.pop("price")}
        return {**old, "model": model}


class ModelCallResult(_Model):
    message: ChatMessage
    input_tokens: int
    output_tokens: int
    finish_reason: str = "stop"
    # The switch that refused the call (`is_killed`: no call made), or one that could not be
    # read (`is_unknown`: the call was made, the run goes on marked `flags_degraded`).
    kill_switch: KillSwitchCheck | None = None
    guardrails: GuardrailReport | None = None  # what the agent's checks found, if it has any


class ToolCallInput(_Model):
    run_id: str
    agent: str
    step: int
    call_id: str
    tool: str
    arguments: dict[str, Any]
    idempotency_key: str
    context: RunContext = Field(default_factory=RunContext)
    risk_tier: RiskTier | None = None
    decision: str = "auto"  # "auto" (no approval needed) or "approved"
    simulate: bool = False  # shadow runs: describe the call, never make it
    # Check the global, agent and tool switches before running the tool: not run if one is
    # on, nor when one cannot be read and the tool is destructive (fail closed).
    check_kill_switch: bool = False


class ToolCallResult(_Model):
    ok: bool
    output: Any = None
    error: str | None = None
    was_replayed: bool = False
    # The switch that refused the call, or one that could not be read (a destructive tool
    # was then refused; any other ran, and its result is here).
    kill_switch: KillSwitchCheck | None = None


class NotifyApproversInput(_Model):
    run_id: str
    agent: str
    approval: PendingApproval
    recipients: list[str]
    is_escalation: bool = False
    context: RunContext = Field(default_factory=RunContext)


# --- outcomes, shadow comparisons, continue-as-new -----------------------------------------


class RunOutcome(_Model):
    """One finished run, as recorded for SLOs and canary comparisons."""

    run_id: str
    agent: str
    variant: str
    status: RunStatus
    stop_reason: StopReason | None
    steps: int
    usage: Usage
    safety_events: int
    started_at: datetime
    ended_at: datetime
    context: RunContext = Field(default_factory=RunContext)
    safety_kinds: list[str] = Field(default_factory=list)
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    flag_variations: dict[str, int] = Field(default_factory=dict)  # flag key -> variation
    build_id: str | None = None
    is_shadow: bool = False


class CloseHaltedInput(_Model):
    """A halted run closing as Canceled: this run (not a later one of the same id) is asked
    to cancel unless a cancellation was requested already. Its `result` is here so it stays
    in history: Temporal keeps no details on a cancelled close (core-based SDKs drop them,
    temporalio/sdk-rust#1463), and `opsready.client` reads the result back from this input."""

    workflow_id: str
    run_id: str
    request_cancel: bool
    reason: str
    result: AgentRunResult


class CompareShadowInput(_Model):
    agent: str
    candidate: Candidate
    production: ComparedRun
    shadow: ComparedRun


class RunCheckpoint(_Model):
    """What continue-as-new carries into the next run of the same workflow id."""

    config: RunConfig
    messages: list[ChatMessage]
    state: AgentRunState
    deadline: datetime


AgentRunRequest.model_rebuild(_types_namespace={"RunCheckpoint": RunCheckpoint})
