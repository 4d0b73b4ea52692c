"""Payloads of the controls a run carries: its quota policy, how it treats an open circuit
breaker, its guardrails, its answer cache, and what the quota and cache activities take.

Recorded in histories (the run's config and activity inputs and results), so field names
are a contract; every field has a default, so configs recorded before them still load.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.quota_types import QuotaLimits, QuotaScope, Refusal


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- in the run's config -----------------------------------------------------------------


class ScopeQuota(_Model):
    """One ledger a run counts against, with the limits its config sets for it."""

    scope: QuotaScope
    limits: QuotaLimits = Field(default_factory=QuotaLimits)


class QuotaPolicy(_Model):
    """The ledgers a run counts against (its user, tenant and agent, where limited) and
    what happens when a model call would exceed one: refuse it, or ask a human."""

    scopes: list[ScopeQuota] = Field(default_factory=list)
    on_exceeded: Literal["refuse", "require_approval"] = "refuse"


class BreakerPolicy(_Model):
    """What a run does when a call fails fast on an open circuit breaker."""

    on_model_open: Literal["fallback", "escalate", "fail"] = "fallback"
    on_tool_open: Literal["disable", "escalate", "fail"] = "disable"


class GuardrailSet(_Model):
    """An agent's checks per stage (name -> validated options), in run order: the plain
    data of `opsready.guardrails.GuardrailConfig`."""

    input: dict[str, dict[str, Any]] = Field(default_factory=dict)
    output: dict[str, dict[str, Any]] = Field(default_factory=dict)


class AnswerCachePolicy(_Model):
    """A read-only agent may answer a question it answered before from the cache."""

    ttl_seconds: float = Field(default=3600.0, gt=0)


# --- guardrail findings, returned with a model call --------------------------------------

# How a tool call's `error` starts when a guardrail refused it (not a malformed call).
GUARDRAIL_REFUSAL = "refused by guardrail"


class GuardrailFinding(_Model):
    stage: Literal["input", "output"]
    guardrail: str
    kind: str
    action: Literal["block", "review", "mask", "allow"]
    detail: str  # never repeats a sensitive value
    call_id: str | None = None  # the proposed tool call it is about


class GuardrailReport(_Model):
    """What the guardrails found in one model call's input and answer.

    `input_text`: the user's message as masked (set only when it was). `blocked` and
    `review`: why the input or the answer must stop, or wait for a human."""

    findings: list[GuardrailFinding] = Field(default_factory=list)
    input_text: str | None = None
    blocked: str | None = None
    review: str | None = None
    stage: Literal["input", "output"] | None = None  # the stage that blocked or needs review


# --- the quota activity -----------------------------------------------------------------


class QuotaReserve(_Model):
    key: str
    amount_usd: float = Field(ge=0)


class QuotaCommit(_Model):
    key: str
    actual_usd: float = Field(ge=0)


class QuotaCall(_Model):
    """One step of a run against all of its ledgers, applied in this order: commit,
    release, open the run, reserve, close the run. Every part is idempotent (by key or
    run id), so a retried activity counts nothing twice."""

    run_id: str
    scopes: list[ScopeQuota]
    commit: QuotaCommit | None = None
    release: str | None = None
    open_run: bool = False
    reserve: QuotaReserve | None = None
    close_run: bool = False


class QuotaCallResult(_Model):
    refusal: Refusal | None = None  # the first ledger that refused; nothing is held then


# --- the answer cache activities -------------------------------------------------------


class AnswerLookup(_Model):
    key: str


class AnswerLookupResult(_Model):
    answer: str | None = None


class AnswerStore(_Model):
    key: str
    answer: str
    ttl_seconds: float
