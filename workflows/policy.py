"""Pure decisions the agent run makes: pricing, budgets, tool policy, approver rights.

No I/O and no clocks, so they are safe in workflow code and easy to unit-test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflows.contract import SafetyKind
from workflows.payloads import ApprovalPolicy, Budgets, ModelPrice, RunConfig, ToolSpec
from workflows.types import RiskTier, StopReason, Usage

_MILLION = 1_000_000


def price_usage(price: ModelPrice, input_tokens: int, output_tokens: int) -> float:
    """Cost in USD of one model call, rounded to a micro-dollar so sums stay stable."""
    cost = (
        input_tokens * price.input_per_million_usd + output_tokens * price.output_per_million_usd
    ) / _MILLION
    return round(cost, 6)


def add_usage(total: Usage, price: ModelPrice, input_tokens: int, output_tokens: int) -> Usage:
    return Usage(
        input_tokens=total.input_tokens + input_tokens,
        output_tokens=total.output_tokens + output_tokens,
        cost_usd=round(total.cost_usd + price_usage(price, input_tokens, output_tokens), 6),
    )


def budget_breach(budgets: Budgets, usage: Usage, steps: int) -> tuple[StopReason, str] | None:
    """The budget broken by this usage, or by a run that has taken (or is about to take)
    `steps` model steps, with a reason an operator can read; None when all hold."""
    if usage.total_tokens > budgets.max_total_tokens:
        return (
            StopReason.TOKEN_BUDGET,
            f"token budget exceeded: {usage.total_tokens} tokens used, "
            f"limit {budgets.max_total_tokens}",
        )
    if usage.cost_usd > budgets.max_cost_usd:
        return (
            StopReason.COST_BUDGET,
            f"cost budget exceeded: ${usage.cost_usd:.6f} spent, limit ${budgets.max_cost_usd:.4f}",
        )
    if steps > budgets.max_steps:
        return (
            StopReason.MAX_STEPS,
            f"max_steps reached: {budgets.max_steps} steps without a final answer",
        )
    return None


def is_refused_while_unknown(risk_tier: RiskTier | None) -> bool:
    """Whether a tool is refused while a kill switch covering it cannot be read (fail
    closed: destructive tools; the others run, and the run is marked `flags_degraded`).
    The tool activity and the workflow both ask, so they agree on what was refused."""
    return risk_tier is RiskTier.DESTRUCTIVE


def approval_reason(spec: ToolSpec, arguments: dict[str, Any]) -> str | None:
    """Why this call needs a human, or None when it may run unattended.

    Destructive tools always need one, whatever their rule says: the tier is the floor.
    A threshold rule whose argument is missing or not a number also needs one (fail closed).
    """
    if spec.risk_tier is RiskTier.DESTRUCTIVE:
        return f"{spec.name} is a destructive tool"
    rule = spec.approval
    if rule.mode == "always":
        return f"{spec.name} always needs approval"
    if rule.mode == "over_threshold" and rule.field is not None and rule.threshold is not None:
        value = arguments.get(rule.field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{spec.name}: {rule.field} is not a number, so it cannot be checked"
        if value > rule.threshold:
            return f"{spec.name}: {rule.field}={value:g} is over the threshold {rule.threshold:g}"
    return None


def approver_error(
    policy: ApprovalPolicy, approver: str, requester: str | None, *, is_escalated: bool
) -> str | None:
    """Why `approver` may not decide, or None when they may."""
    allowed = set(policy.approvers)
    if is_escalated:
        allowed |= set(policy.escalate_to)
    if requester is not None and approver == requester:
        return f"{approver} started this run and cannot approve their own request"
    if "*" in allowed or approver in allowed:
        return None
    names = ", ".join(sorted(allowed)) or "nobody"
    return f"{approver} may not approve for this agent (allowed: {names})"


@dataclass(frozen=True)
class ToolGate:
    """What must happen before a tool call runs: simulate it, ask a human, or refuse it."""

    simulate: bool = False
    approval_reason: str | None = None
    refusal: str | None = None
    refusal_kind: SafetyKind | None = None


def limit_refusal(spec: ToolSpec, agent: str, arguments: dict[str, Any]) -> str | None:
    """Why the arguments break this agent's ceilings for the tool (a missing or
    non-numeric limited argument breaks them too: fail closed), or None."""
    for field, ceiling in spec.limits.items():
        value = arguments.get(field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{field} is not a number, so the limit of {ceiling:g} cannot be checked"
        if value > ceiling:
            return f"{field}={value:g} is over {agent}'s limit of {ceiling:g} for {spec.name}"
    return None


def tool_gate(
    config: RunConfig, spec: ToolSpec, arguments: dict[str, Any], review: str | None = None
) -> ToolGate:
    """`review`: a guardrail asks a human to approve this call first."""
    over = limit_refusal(spec, config.agent, arguments)
    if over is not None:
        return ToolGate(refusal=over, refusal_kind=SafetyKind.ARGUMENT_LIMIT)
    if config.is_shadow and spec.risk_tier is not RiskTier.READ:
        # A shadow run never acts on the world, so it never needs (or bothers) a human.
        return ToolGate(simulate=True)
    reason = approval_reason(spec, arguments) or (f"guardrail: {review}" if review else None)
    if config.flags_degraded and spec.risk_tier is RiskTier.DESTRUCTIVE:
        # Fail closed: without flags, destructive tools need a human, or are refused.
        if config.approval.when_flags_unavailable == "refuse":
            return ToolGate(
                refusal="destructive tools are refused while flags are unavailable",
                refusal_kind=SafetyKind.FLAGS_DEGRADED_REFUSAL,
            )
        reason = reason or "flags unavailable: destructive tools need an approval"
    return ToolGate(approval_reason=reason)
