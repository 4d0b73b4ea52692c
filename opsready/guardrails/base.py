"""What every guardrail shares: the protocol, its hits, the context it reads, the outcome.

Guardrails are I/O-free checks of text: activities run them on a run's input (before the
model sees it) and on the model's answer and proposed tool calls (before anyone acts).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from workflows.payloads import ToolCallRequest

Stage = Literal["input", "output"]
# What a hit asks for, strongest first: stop; send to a human; mask and go on; only record.
Action = Literal["block", "review", "mask", "allow"]
_STRENGTH: dict[str, int] = {"allow": 0, "mask": 1, "review": 2, "block": 3}


class GuardrailKind(StrEnum):
    """Safety-event kinds guardrail hits are recorded under (`SafetyEvent.kind`)."""

    INPUT_TOO_LARGE = "input_too_large"
    PROMPT_INJECTION = "prompt_injection"
    SECRET_IN_INPUT = "secret_in_input"
    PII_IN_INPUT = "pii_in_input"
    SCHEMA_VIOLATION = "schema_violation"
    FORBIDDEN_CONTENT = "forbidden_content"
    DATA_LEAK = "data_leak"
    UNGROUNDED_REFUND = "ungrounded_refund"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GuardrailHit(_Model):
    """One finding. `detail` never repeats a sensitive value: it goes to logs and events."""

    guardrail: str
    kind: str
    action: Action
    detail: str
    masked_text: str | None = None  # the text to use instead, when action is "mask"


class ToolOutput(_Model):
    """A tool result the answer may draw on (a `ToolCallRecord` has the same two fields)."""

    tool: str
    output: Any = None


class GuardrailContext(_Model):
    """What a check may know besides the text: who runs, what tools returned and proposed."""

    agent: str = ""
    run_id: str | None = None
    step: int | None = None
    tool_outputs: list[ToolOutput] = Field(default_factory=list)
    tool_calls: list[ToolCallRequest] = Field(default_factory=list)  # proposed in this answer


class Guardrail(Protocol):
    """A check: `name` as configured, its `stage`, and `check` returning its hits."""

    @property
    def name(self) -> str: ...

    @property
    def stage(self) -> Stage: ...

    def check(self, text: str, ctx: GuardrailContext) -> list[GuardrailHit]: ...


class GuardrailOutcome(_Model):
    """All hits of one stage, the text to go on with, and what must happen."""

    stage: Stage
    text: str  # masked where a check masked, else the original
    hits: list[GuardrailHit] = Field(default_factory=list)
    is_blocked: bool = False
    needs_review: bool = False

    @property
    def reason(self) -> str | None:
        """The strongest hit's detail: what an operator (or the model) is told."""
        if not self.hits:
            return None
        top = max(self.hits, key=lambda h: _STRENGTH[h.action])
        return f"{top.guardrail}: {top.detail}"


def strongest(hits: list[GuardrailHit]) -> Action:
    return max((h.action for h in hits), key=_STRENGTH.__getitem__, default="allow")
