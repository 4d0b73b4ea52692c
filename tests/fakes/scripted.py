"""A scripted model provider for workflow tests: each scenario is a function of the request.

Scenarios are chosen by the run's user message, so one worker serves many tests.
Every request is kept, so tests can assert on what the model was shown.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio.exceptions import ApplicationError

from workflows.types import ChatMessage, ModelCallInput, ModelCallResult, ToolCallRequest

Script = Callable[[ModelCallInput], ChatMessage]


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


def tool_messages(request: ModelCallInput) -> list[ChatMessage]:
    return [m for m in request.messages if m.role == "tool"]


class ScriptedProvider:
    name = "scripted"

    def __init__(self, scripts: dict[str, Script], tokens_per_call: tuple[int, int] = (100, 20)):
        self.scripts = scripts
        self.tokens_per_call = tokens_per_call
        self.requests: list[ModelCallInput] = []

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        self.requests.append(request)
        user = next(m.content for m in request.messages if m.role == "user")
        script = self.scripts.get(user or "")
        if script is None:
            raise ApplicationError(
                f"no script for {user!r}", type="ModelRequestRejected", non_retryable=True
            )
        message = script(request)
        input_tokens, output_tokens = self.tokens_per_call
        return ModelCallResult(
            message=message, input_tokens=input_tokens, output_tokens=output_tokens
        )

    async def aclose(self) -> None:
        return None
