"""The public types of `AgentRun`: its request, the human input it takes, its state and result.

What service code, the CLI and the Temporal UI read and send (`opsready` re-exports the main
ones). Every model here travels through Temporal payloads and is recorded in histories, so
field names are part of the public contract: renaming one breaks running histories and
service code. Configuration and activity payloads are in `workflows.payloads`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from workflows.payloads import RunCheckpoint


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
    INVALID_REQUEST = "invalid_request"
    QUOTA_EXCEEDED = "quota_exceeded"  # a spend quota or open-runs cap across runs
    GUARDRAIL = "guardrail"  # a guardrail blocked the input or the answer


class RiskTier(StrEnum):
    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- requests and human input ------------------------------------------------------------


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
    approved: bool = Field(strict=True)  # true or false: "yes" or 1 is no decision
    approver: str = Field(min_length=1, max_length=200)
    comment: str | None = Field(default=None, max_length=2_000)


class HaltRequest(_Model):
    """Payload of the `halt` signal and the `halt` update."""

    reason: str = Field(min_length=1, max_length=2_000)
    by: str = Field(min_length=1, max_length=200)


# --- what a run shows and returns --------------------------------------------------------


class FlagEvaluation(_Model):
    """One flag evaluated for a run, as recorded in history (replays never re-evaluate)."""

    key: str
    value: Any = None
    variation: int | None = None
    reason: str  # LaunchDarkly's reason kind: FALLTHROUGH, TARGET_MATCH, RULE_MATCH, OFF, ERROR
    error: str | None = None  # the error kind when reason is ERROR (FLAG_NOT_FOUND...)
    is_default: bool = False  # no usable value: the agent's default was used


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


class Usage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


ToolDecision = Literal[
    "awaiting_approval",  # still open: waiting for a decision
    "running",  # still open: the tool activity is in flight
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
    approvers: list[str] = Field(default_factory=list)  # who may decide now


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
    action: str | None = None  # what was done about it: blocked, masked, sent for review...


class FallbackRecord(_Model):
    """One switch to the next model of the chain, and why."""

    step: int
    from_model: str
    to_model: str
    reason: str
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
    fallbacks: list[FallbackRecord] = Field(default_factory=list)


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
    fallbacks: list[FallbackRecord] = Field(default_factory=list)


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


AgentRunState.model_rebuild()
AgentRunResult.model_rebuild()

# `AgentRunRequest.checkpoint` is a payload type, and `workflows.payloads` imports this module:
# importing it last completes `AgentRunRequest`, whichever of the two is imported first.
import workflows.payloads  # noqa: E402, F401
