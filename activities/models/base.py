"""The model provider interface every chat model backend implements.

A provider turns one `ModelCallInput` (conversation + tool specs) into one assistant
message with token usage. It does not retry: Temporal's RetryPolicy on the model activity
is in charge, so a provider only classifies failures (`workflows.contract.ErrorType`).
"""

from __future__ import annotations

from typing import Protocol

from workflows.payloads import ModelCallInput, ModelCallResult


class ModelProvider(Protocol):
    """A chat-completions backend, selected by the `provider` part of a model name."""

    name: str

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        """Return the assistant's next message. Raise `temporalio.exceptions.ApplicationError`
        typed by `workflows.contract.ErrorType` for failures; retryable ones carry
        `non_retryable=False`."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
