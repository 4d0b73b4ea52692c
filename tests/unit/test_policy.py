"""Pure policy decisions: pricing, budgets, when a tool needs a human, who may approve."""

from __future__ import annotations

import pytest

from workflows.payloads import ApprovalPolicy, ApprovalRule, Budgets, ModelPrice, ToolSpec
from workflows.policy import add_usage, approval_reason, approver_error, budget_breach, price_usage
from workflows.types import RiskTier, StopReason, Usage

PRICE = ModelPrice(input_per_million_usd=0.15, output_per_million_usd=0.60)


def spec(tier: RiskTier = RiskTier.WRITE, **rule: object) -> ToolSpec:
    return ToolSpec(
        name="refund_order",
        description="",
        parameters={},
        risk_tier=tier,
        approval=ApprovalRule.model_validate(rule),
    )


def test_price_is_per_million_tokens_for_input_and_output() -> None:
    assert price_usage(PRICE, 1_000_000, 0) == 0.15
    assert price_usage(PRICE, 1000, 500) == pytest.approx(0.00045)


def test_usage_accumulates_tokens_and_cost() -> None:
    total = add_usage(add_usage(Usage(), PRICE, 1000, 100), PRICE, 1000, 100)
    assert (total.input_tokens, total.output_tokens, total.total_tokens) == (2000, 200, 2200)
    assert total.cost_usd == pytest.approx(0.00042)


def test_budget_breach_names_the_budget() -> None:
    budgets = Budgets(max_steps=4, max_total_tokens=100, max_cost_usd=0.01)
    assert budget_breach(budgets, Usage(input_tokens=50, output_tokens=50), steps=4) is None
    tokens = budget_breach(budgets, Usage(input_tokens=90, output_tokens=20), steps=1)
    assert tokens is not None and tokens[0] is StopReason.TOKEN_BUDGET
    cost = budget_breach(budgets, Usage(input_tokens=1, cost_usd=0.02), steps=1)
    assert cost is not None and cost[0] is StopReason.COST_BUDGET and "$0.020000" in cost[1]
    steps = budget_breach(budgets, Usage(), steps=5)  # a fifth step would be one too many
    assert steps == (
        StopReason.MAX_STEPS,
        "max_steps reached: 4 steps without a final answer",
    )


def test_threshold_rule_needs_approval_only_over_the_threshold() -> None:
    tool = spec(mode="over_threshold", field="amount_usd", threshold=50)
    assert approval_reason(tool, {"amount_usd": 50}) is None
    assert "over the threshold" in (approval_reason(tool, {"amount_usd": 50.01}) or "")


@pytest.mark.parametrize("value", [None, "100", True])
def test_threshold_rule_fails_closed_when_the_value_cannot_be_checked(value: object) -> None:
    tool = spec(mode="over_threshold", field="amount_usd", threshold=50)
    assert "cannot be checked" in (approval_reason(tool, {"amount_usd": value}) or "")


def test_destructive_tools_always_need_approval_whatever_their_rule() -> None:
    assert approval_reason(spec(RiskTier.DESTRUCTIVE, mode="never"), {}) is not None
    assert approval_reason(spec(RiskTier.READ, mode="never"), {}) is None
    assert approval_reason(spec(RiskTier.READ, mode="always"), {}) is not None


def test_approver_rights() -> None:
    policy = ApprovalPolicy(approvers=["alice"], escalate_to=["lead"])
    assert approver_error(policy, "alice", "customer", is_escalated=False) is None
    assert "may not approve" in (approver_error(policy, "lead", None, is_escalated=False) or "")
    assert approver_error(policy, "lead", None, is_escalated=True) is None
    assert "own request" in (approver_error(policy, "alice", "alice", is_escalated=False) or "")
    anyone = ApprovalPolicy(approvers=["*"])
    assert approver_error(anyone, "zed", None, is_escalated=False) is None
    nobody = ApprovalPolicy()
    assert "allowed: nobody" in (approver_error(nobody, "zed", None, is_escalated=False) or "")
