"""Deterministic doubles for the workflow tests and the golden-history recorder.

A scripted model provider (`scripted/test`: the run's user message picks a script, every
request is kept) and a destructive tool (`close_account`) that only writes the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pydantic import BaseModel
from temporalio.exceptions import ApplicationError

from activities.tools.registry import Tool, ToolContext
from workflows.contract import ErrorType
from workflows.payloads import ChatMessage, ModelCallInput, ModelCallResult, ToolCallRequest
from workflows.types import RiskTier

Script = Callable[[ModelCallInput], ChatMessage]

# The price table entries of the scripted models (append to pricing.toml): `scripted/test`,
# what test agents use, and `scripted/backup`, a dearer fallback.
SCRIPTED_PRICE = """
[models."scripted/test"]
input_per_million_usd = 1.0
output_per_million_usd = 2.0

[models."scripted/backup"]
input_per_million_usd = 10.0
output_per_million_usd = 20.0

[models."scripted/second"]
input_per_million_usd = 5.0
output_per_million_usd = 10.0

[models."gated/test"]
input_per_million_usd = 1.0
output_per_million_usd = 2.0
"""


def answer(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def calls(step: int, *calls_: tuple[str, dict[str, object]]) -> ChatMessage:
    return ChatMessage(
        role="assistant",
        tool_calls=[
            ToolCallRequest(id=f"call_{step}_{i}", name=name, arguments=dict(args))
            for i, (name, args) in enumerate(calls_, start=1)
        ],
    )


def only_on(model: str, script: Script) -> Script:
    """A script that answers only when called with `model` (provider/model): every other
    model's call fails for good, as a provider that rejects the request does."""

    def on(request: ModelCallInput) -> ChatMessage:
        if request.model.model != model:
            raise ApplicationError(
                f"{request.model.model} is down",
                type=ErrorType.MODEL_REQUEST_REJECTED,
                non_retryable=True,
            )
        return script(request)

    return on


def circuit_open_on(model: str, then: Script, times: int | None = None) -> Script:
    """A script whose calls to `model` fail fast as on an open circuit breaker (the first
    `times` of them, or all); every other call goes to `then`."""
    seen = [0]

    def on(request: ModelCallInput) -> ChatMessage:
        if request.model.model == model and (times is None or seen[0] < times):
            seen[0] += 1
            raise ApplicationError(
                f"circuit breaker model:{request.model.provider} is open: 5 of 6 calls failed",
                type=ErrorType.CIRCUIT_OPEN,
                non_retryable=True,
            )
        return then(request)

    return on


def tool_messages(request: ModelCallInput) -> list[ChatMessage]:
    return [m for m in request.messages if m.role == "tool"]


class ScriptedProvider:
    """Provider `scripted`: each scenario is a function of the request, chosen by the run's
    user message, so one worker serves many scenarios."""

    name = "scripted"

    def __init__(self, scripts: dict[str, Script], tokens_per_call: tuple[int, int] = (100, 20)):
        self.scripts = scripts
        self.tokens_per_call = tokens_per_call
        self.requests: list[ModelCallInput] = []

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        self.requests.append(request)
        user = next((m.content for m in request.messages if m.role == "user"), None) or ""
        script = self.scripts.get(user) or self._by_suffix(user)
        if script is None:
            raise ApplicationError(
                f"no script for {user!r}", type=ErrorType.MODEL_REQUEST_REJECTED, non_retryable=True
            )
        input_tokens, output_tokens = self.tokens_per_call
        return ModelCallResult(
            message=script(request), input_tokens=input_tokens, output_tokens=output_tokens
        )

    def _by_suffix(self, user: str) -> Script | None:
        """A script registered as `text [id]`, when the text reached the model changed (a
        guardrail masked it) but its id did not."""
        if not user.endswith("]") or " [" not in user:
            return None
        suffix = user[user.rindex(" [") :]
        return next((s for key, s in self.scripts.items() if key.endswith(suffix)), None)

    async def aclose(self) -> None:
        return None


class GatedProvider(ScriptedProvider):
    """Provider `gated`: like `scripted`, but each call waits until `release()` (a model
    call in flight, for halts and crashes mid-call); `entered` is set once one waits."""

    name = "gated"

    def __init__(self, scripts: dict[str, Script]) -> None:
        super().__init__(scripts)
        self._open = asyncio.Event()
        self.entered = asyncio.Event()

    def release(self) -> None:
        self._open.set()

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        self.entered.set()
        await self._open.wait()
        return await super().complete(request)


class CloseAccountArgs(BaseModel):
    account_id: str


async def _close_account(args: CloseAccountArgs, ctx: ToolContext) -> dict[str, str]:
    await ctx.ledger.record_effect(ctx.idempotency_key, "close_account", args.account_id)
    return {"closed": args.account_id}


CLOSE_ACCOUNT = Tool(
    name="close_account",
    description="Close a customer account.",
    args=CloseAccountArgs,
    risk_tier=RiskTier.DESTRUCTIVE,
    fn=_close_account,
)


# What `account_profile` returns: personal data and a secret, as real back ends do.
PROFILE_EMAIL, PROFILE_API_KEY = "dana.reyes@example.com", "sk-live-4f9a8b7c6d5e4f3a2b1c"


class ProfileArgs(BaseModel):
    account_id: str


async def _account_profile(args: ProfileArgs, ctx: ToolContext) -> dict[str, str]:
    return {"account_id": args.account_id, "email": PROFILE_EMAIL, "api_key": PROFILE_API_KEY}


ACCOUNT_PROFILE = Tool(
    name="account_profile",
    description="A customer's account profile.",
    args=ProfileArgs,
    risk_tier=RiskTier.READ,
    fn=_account_profile,
)


class StatusArgs(BaseModel):
    service: str


async def _status_page(args: StatusArgs, ctx: ToolContext) -> dict[str, str]:
    # As the tool activity raises it when the tool's breaker is open.
    raise ApplicationError(
        f"circuit breaker tool:status_page is open: {args.service} keeps failing",
        type=ErrorType.CIRCUIT_OPEN,
        non_retryable=True,
    )


STATUS_PAGE = Tool(
    name="status_page",
    description="The status of a service.",
    args=StatusArgs,
    risk_tier=RiskTier.READ,
    fn=_status_page,
)
