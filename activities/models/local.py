"""A deterministic local model: drives the demo agent with no key and no network.

It reads the conversation the way a tool-using model would and answers with the same
shapes (tool calls, usage, finish reason), so the workflow cannot tell it from a real one.
Token counts are estimated (about four characters a token) so budgets and cost are real.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from temporalio.exceptions import ApplicationError

from workflows.contract import ErrorType
from workflows.payloads import ChatMessage, ModelCallInput, ModelCallResult, ToolCallRequest

_ORDER_ID = re.compile(r"\bA-\d{4}\b")
_AMOUNT = re.compile(r"\$\s?(\d+(?:\.\d{1,2})?)")
_WANTS_REFUND = re.compile(r"refund|money back|broken|damaged|arrived cracked", re.IGNORECASE)

Script = Callable[[ModelCallInput], ChatMessage]


class LocalProvider:
    name = "local"

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        self._scripts = scripts or {"support-triage": support_triage, "broken": broken}

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        script = self._scripts.get(request.model.name)
        if script is None:
            known = ", ".join(sorted(self._scripts))
            raise ApplicationError(
                f"the local provider has no model {request.model.name!r} (it has: {known})",
                type=ErrorType.MODEL_REQUEST_REJECTED,
                non_retryable=True,
            )
        message = script(request)
        prompt_chars = sum(len(m.model_dump_json()) for m in request.messages) + sum(
            len(json.dumps(t.parameters)) + len(t.description) for t in request.tools
        )
        return ModelCallResult(
            message=message,
            input_tokens=prompt_chars // 4 + 1,
            output_tokens=len(message.model_dump_json(exclude_defaults=True)) // 4 + 1,
            finish_reason="tool_calls" if message.tool_calls else "stop",
        )

    async def aclose(self) -> None:
        return None


def broken(request: ModelCallInput) -> ChatMessage:
    """`local/broken` fails every call, on purpose: the demo (and a game day) switch an agent
    to it with the `model` flag to rehearse an incident. Not retryable, so runs fail fast."""
    raise ApplicationError(
        "local/broken failed on purpose (an incident rehearsal: set the model flag back)",
        type=ErrorType.MODEL_REQUEST_REJECTED,
        non_retryable=True,
    )


def support_triage(request: ModelCallInput) -> ChatMessage:
    """Search the knowledge base and the order, refund when asked, then draft a reply."""
    messages = request.messages
    text = next((m.content or "" for m in messages if m.role == "user"), "")
    called = {call.name for m in messages if m.role == "assistant" for call in m.tool_calls}
    results = _tool_results(messages)
    order_match = _ORDER_ID.search(text)

    def call(n: int, name: str, **arguments: Any) -> ToolCallRequest:
        return ToolCallRequest(id=f"call_{request.step}_{n}", name=name, arguments=arguments)

    if "search_kb" not in called:
        calls = [call(1, "search_kb", query=text[:200])]
        if order_match:
            calls.append(call(2, "lookup_order", order_id=order_match.group(0)))
        return ChatMessage(role="assistant", tool_calls=calls)

    order = results.get("lookup_order")
    has_order = isinstance(order, dict) and "order_id" in order
    if has_order and _WANTS_REFUND.search(text) and "refund_order" not in called:
        assert isinstance(order, dict)
        amount_match = _AMOUNT.search(text)
        amount = float(amount_match.group(1)) if amount_match else float(order["total_usd"])
        reason = "customer reports: " + text[:120]
        return ChatMessage(
            role="assistant",
            tool_calls=[
                call(
                    1, "refund_order", order_id=order["order_id"], amount_usd=amount, reason=reason
                )
            ],
        )
    return ChatMessage(
        role="assistant", content=_draft_reply(order if has_order else None, results)
    )


def _tool_results(messages: list[ChatMessage]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for message in messages:
        if message.role == "tool" and message.name:
            try:
                results[message.name] = json.loads(message.content or "null")
            except json.JSONDecodeError:
                results[message.name] = {"error": message.content}
    return results


def _draft_reply(order: Any, results: dict[str, Any]) -> str:
    name = order["customer"].split()[0] if order else "there"
    lines = [f"Hi {name},", ""]
    articles = (results.get("search_kb") or {}).get("articles", [])
    if articles:
        lines.append(
            f"Thanks for reaching out. Per our {articles[0]['title'].lower()}: {articles[0]['body']}"
        )
    else:
        lines.append("Thanks for reaching out. A support specialist will look into this for you.")
    if order:
        lines.append(f"Your order {order['order_id']} is {order['status']}.")
    refund = results.get("refund_order")
    if isinstance(refund, dict) and refund.get("status") == "refunded":
        lines.append(
            f"We have refunded ${refund['amount_usd']:.2f} (reference {refund['refund_id']})."
        )
    elif isinstance(refund, dict) and refund.get("error"):
        lines.append("We could not issue the refund automatically; a specialist will follow up.")
    lines += ["", "Best regards,", "Support team"]
    return "\n".join(lines)
