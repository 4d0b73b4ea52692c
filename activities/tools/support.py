"""Tools of the demo `support-triage` agent: knowledge-base search, order lookup, refunds.

Data is small and local (agents/data/support-triage/). Orders belong to a customer: the
order tools answer only for the run's own user, and another customer's order is "not
found" (not "forbidden": its existence is not the caller's business), whatever the model
was talked into asking. The refund goes to the side-effect ledger under the call's
idempotency key, so a retried refund is the same refund.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from activities.tools.registry import Tool, ToolContext, ToolError
from workflows.types import RiskTier

_WORD = re.compile(r"[a-z]+")


class SearchKbArgs(BaseModel):
    query: str = Field(min_length=1, max_length=500, description="What the customer asks about")


class LookupOrderArgs(BaseModel):
    order_id: str = Field(pattern=r"^A-\d{4}$", description="Order id such as A-1002")


class RefundOrderArgs(BaseModel):
    order_id: str = Field(pattern=r"^A-\d{4}$", description="Order id such as A-1002")
    amount_usd: float = Field(gt=0, description="Amount to refund in USD")
    reason: str = Field(min_length=1, max_length=500, description="Why the refund is due")


def support_tools(data_dir: Path) -> list[Tool]:
    """The three tools, reading their data from `data_dir`."""

    async def search_kb(args: SearchKbArgs, ctx: ToolContext) -> dict[str, Any]:
        words = set(_WORD.findall(args.query.lower()))
        scored = []
        for article in _load(data_dir / "kb.json"):
            haystack = set(_WORD.findall(" ".join(article["tags"]).lower()))
            score = len(words & haystack)
            if score:
                scored.append((score, article))
        scored.sort(key=lambda pair: (-pair[0], pair[1]["id"]))
        return {"articles": [a for _, a in scored[:2]]}

    def callers_order(order_id: str, ctx: ToolContext) -> dict[str, Any]:
        order = _load(data_dir / "orders.json").get(order_id)
        if order is None or ctx.user_id is None or order.get("customer_id") != ctx.user_id:
            raise ToolError(f"order {order_id} not found")
        return dict(order)

    async def lookup_order(args: LookupOrderArgs, ctx: ToolContext) -> dict[str, Any]:
        return callers_order(args.order_id, ctx)

    async def refund_order(args: RefundOrderArgs, ctx: ToolContext) -> dict[str, Any]:
        order = callers_order(args.order_id, ctx)
        if args.amount_usd > order["total_usd"]:
            raise ToolError(
                f"refund ${args.amount_usd:.2f} is more than the order total "
                f"${order['total_usd']:.2f}"
            )
        refund_id = "R-" + hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:10]
        refund = await ctx.ledger.refund_once(
            ctx.idempotency_key, refund_id, args.order_id, args.amount_usd, args.reason
        )
        return {"status": "refunded", **refund}

    return [
        Tool(
            name="search_kb",
            description="Search the support knowledge base for policy articles.",
            args=SearchKbArgs,
            risk_tier=RiskTier.READ,
            fn=search_kb,
            timeout_seconds=10,
        ),
        Tool(
            name="lookup_order",
            description="Look up an order by id: items, total, delivery status.",
            args=LookupOrderArgs,
            risk_tier=RiskTier.READ,
            fn=lookup_order,
            timeout_seconds=10,
        ),
        Tool(
            name="refund_order",
            description="Refund part or all of an order to the customer.",
            args=RefundOrderArgs,
            risk_tier=RiskTier.WRITE,
            fn=refund_order,
            timeout_seconds=30,
        ),
    ]


@cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text())
