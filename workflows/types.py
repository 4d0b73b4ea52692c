"""Typed inputs, outputs, state, signals and queries of opsready workflows.

Shared by workflows, activities and starters. Everything here is a pydantic model that
travels through Temporal payloads, so field names are part of the public contract:
renaming one breaks running histories and service code.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.contract import KillSwitchScope, kill_switch_scope


class RunStatus(StrEnum):
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    HALTED = "halted"
    BUDGET_EXCEEDED = "budget_exceeded"
    TIMED_OUT = "timed_out"

    @property
    def is_terminal(self) -> bool:
        return self not in (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL)


class StopReason(StrEnum):
    """Machine-readable cause of a run's end, next to the human-readable `reason`."""

    ANSWERED = "answered"
    MAX_STEPS = "max_steps"
    TOKEN_BUDGET = "token_budget"
    COST_BUDGET = "cost_budget"
    RUN_TIMEOUT = "run_timeout"
    APPROVAL_REJECTED = "approval_rejected"
    APPROVAL_TIMEOUT = "approval_timeout"
    HALT = "halt"
    KILL_SWITCH = "kill_switch"
    MODEL_ERROR = "model_error"
    CONFIG_ERROR = "config_error"


class RiskTier(StrEnum):
    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests and human input ------------------------------------------------------------


class AgentRunRequest(_Model):
    """What a caller asks for. `checkpoint` is set only by continue-as-new."""

    agent: str = Field(min_length=1, max_length=100)
    input: str = Field(min_length=1, max_length=20_000)
    user_id: str | None = None
    tenant_id: str | None = None
    request_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    checkpoint: RunCheckpoint | None = None
    shadow_of: ShadowOrigin | None = None

    @field_validator("input")
    @classmethod
    def _input_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("input text is empty")
        return value


class ApprovalDecision(_Model):
    """Payload of the `approval_decision` signal and the `decide` update."""

    request_id: str | None = None
    approved: bool
    approver: str = Field(min_length=1, max_length=200)
    comment: str | None = Field(default=None, max_length=2_000)


class HaltRequest(_Model):
    """Payload of the `halt` signal."""

    reason: str = Field(min_length=1, max_length=2_000)
    by: str = Field(min_length=1, max_length=200)


# --- configuration resolved once per run -------------------------------------------------


class FlagEvaluation(_Model):
    """One flag evaluated for a run, as recorded in history (replays never re-evaluate)."""

    key: str
    value: Any = None
    variation: int | None = None
    reason: str  # LaunchDarkly's reason kind: FALLTHROUGH, TARGET_MATCH, RULE_MATCH, OFF, ERROR
    error: str | None = None  # the error kind when reason is ERROR (FLAG_NOT_FOUND...)
    is_default: bool = False  # no usable value: the agent's default was used


class Candidate(_Model):
    """What a shadow run (or a variant) changes against production."""

    prompt_version: str | None = None
    model: str | None = None

    def label(self) -> str:
        parts = [f"prompt {self.prompt_version}"] if self.prompt_version else []
        return ", ".join(parts + ([f"model {self.model}"] if self.model else [])) or "none"


class ShadowOrigin(_Model):
    """Set on a shadow run: whose twin it is and which candidate it tries."""

    run_id: str
    candidate: Candidate


class KillSwitchInput(_Model):
    agent: str
    tool: str | None = None
    context: RunContext = Field(default_factory=lambda: RunContext())


class KillSwitchCheck(_Model):
    is_killed: bool
    flag: str | None = None
    scope: KillSwitchScope | None = None  # what the switch that is on covers
    reason: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _scope_from_flag(cls, data: Any) -> Any:
        # Checks recorded before `scope` existed name only the flag: derive it, so their
        # histories replay down the same path.
        if isinstance(data, dict) and data.get("scope") is None and data.get("flag"):
            return {**data, "scope": kill_switch_scope(str(data["flag"]))}
        return data


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


class RunConfig(_Model):
    """Everything a run needs, resolved once by an activity and recorded in history."""

    agent: str
    agent_version: str
    config_hash: str
    prompt_version: str
    system_prompt: str
    provider: str
    model: str
    variant: str = "control"
    max_output_tokens: int = 1024
    model_timeout_seconds: float = 60.0
    tools: list[ToolSpec]
    budgets: Budgets
    price: ModelPrice
    approval: ApprovalPolicy
    fallback_model: str | None = None  # provider/model tried when the model call fails
    fallback_price: ModelPrice | None = None
    flags: list[FlagEvaluation] = Field(default_factory=list)
    flags_degraded: str | None = None  # why flag defaults were used, when they were
    shadow: Candidate | None = None  # this production run starts a shadow with the candidate
    is_shadow: bool = False

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)


class ConfigSummary(_Model):
    agent_version: str
    prompt_version: str
    model: str
    variant: str
    config_hash: str
    build_id: str | None = None
    flags: list[FlagEvaluation] = Field(default_factory=list)
    flags_degraded: str | None = None
    is_shadow: bool = False


class ResolveConfigInput(_Model):
    agent: str
    user_id: str | None = None
    tenant_id: str | None = None
    run_id: str | None = None  # for sampling decisions (shadow) that must be stable per run
    shadow: Candidate | None = None  # resolve for a shadow run with this candidate


# --- model and tool calls ----------------------------------------------------------------


class ToolCallRequest(_Model):
    """A tool call proposed by the model. `error` is set when it cannot be run as proposed."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class ChatMessage(_Model):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class Usage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


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


class ModelCallInput(_Model):
    run_id: str
    agent: str
    step: int
    provider: str
    model: str
    prompt_version: str
    messages: list[ChatMessage]
    tools: list[ToolSpec]
    max_output_tokens: int
    context: RunContext = Field(default_factory=RunContext)
    price: ModelPrice | None = None


class ModelCallResult(_Model):
    message: ChatMessage
    input_tokens: int
    output_tokens: int
    finish_reason: str = "stop"


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


class ToolCallResult(_Model):
    ok: bool
    output: Any = None
    error: str | None = None
    was_replayed: bool = False


class NotifyApproversInput(_Model):
    run_id: str
    agent: str
    approval: PendingApproval
    recipients: list[str]
    is_escalation: bool = False
    context: RunContext = Field(default_factory=RunContext)


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


# --- what a run shows and returns --------------------------------------------------------

ToolDecision = Literal[
    "executed",
    "simulated",
    "invalid",
    "denied",
    "rejected",
    "approval_timed_out",
    "halted",
    "failed",
]


class ToolCallRecord(_Model):
    step: int
    call_id: str
    tool: str
    risk_tier: RiskTier | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    decision: ToolDecision
    ok: bool = False
    output: Any = None
    error: str | None = None
    idempotency_key: str | None = None
    approval_request_id: str | None = None


class PendingApproval(_Model):
    request_id: str
    step: int
    call_id: str
    tool: str
    arguments: dict[str, Any]
    risk_tier: RiskTier
    reason: str
    requested_at: datetime
    is_escalated: bool = False


class ApprovalRecord(_Model):
    request_id: str
    tool: str
    step: int
    outcome: Literal["approved", "rejected", "timed_out", "halted"]
    approver: str | None = None
    comment: str | None = None
    requested_at: datetime
    decided_at: datetime
    was_escalated: bool = False


class SafetyEvent(_Model):
    kind: str
    step: int
    detail: str
    at: datetime


class AgentRunState(_Model):
    """The `state` query: where a run stands right now."""

    agent: str
    status: RunStatus = RunStatus.RUNNING
    step: int = 0
    pending_approvals: list[PendingApproval] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    config: ConfigSummary | None = None
    safety_events: list[SafetyEvent] = Field(default_factory=list)
    output: str | None = None
    reason: str | None = None
    stop_reason: StopReason | None = None
    started_at: datetime | None = None
    continued_runs: int = 0
    shadow_run_id: str | None = None
    shadow_comparison: ShadowComparison | None = None


class AgentRunResult(_Model):
    status: RunStatus
    output: str | None
    reason: str | None
    stop_reason: StopReason | None
    steps: int
    usage: Usage
    tool_calls: list[ToolCallRecord]
    approvals: list[ApprovalRecord]
    safety_events: list[SafetyEvent]
    config: ConfigSummary | None
    shadow_run_id: str | None = None
    shadow_comparison: ShadowComparison | None = None


# --- shadow runs ---------------------------------------------------------------------------


class ComparedRun(_Model):
    """One side of a shadow comparison: what a run did, without its transcript."""

    run_id: str
    status: RunStatus
    output: str | None = None
    tool_plan: list[str] = Field(default_factory=list)  # tool names in call order
    cost_usd: float = 0.0
    total_tokens: int = 0
    latency_s: float = 0.0
    safety_events: list[str] = Field(default_factory=list)


class ShadowComparison(_Model):
    """Production run vs its shadow twin, recorded in the shadow run's result and state."""

    agent: str
    candidate: Candidate
    production: ComparedRun
    shadow: ComparedRun
    same_tool_plan: bool
    output_similarity: float  # 0..1, word-set similarity of the two answers
    same_status: bool
    compared_at: datetime


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


AgentRunRequest.model_rebuild()
KillSwitchInput.model_rebuild()
AgentRunState.model_rebuild()
AgentRunResult.model_rebuild()
NotifyApproversInput.model_rebuild()
RunOutcome.model_rebuild()
