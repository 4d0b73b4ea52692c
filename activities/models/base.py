"""The model provider interface every chat model backend implements.

A provider turns one `ModelCallInput` (conversation + tool specs) into one assistant
message with token usage. It does not retry: Temporal's RetryPolicy on the model activity
is in charge, so a provider only classifies failures (see `errors`).
"""

from __future__ import annotations

from typing import Protocol

from workflows import activity_names as names
from workflows.types import ModelCallInput, ModelCallResult


class ModelProvider(Protocol):
    """A chat-completions backend, selected by the `provider` part of a model name."""

    name: str

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        """Return the assistant's next message. Raise `temporalio.exceptions.ApplicationError`
        with a type from `errors` for failures; retryable ones carry `non_retryable=False`."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class errors:
    RATE_LIMITED = "ModelRateLimited"
    SERVER_ERROR = "ModelServerError"
    TIMEOUT = "ModelTimeout"
    CONNECTION = "ModelConnectionError"
    REQUEST_REJECTED = names.MODEL_REQUEST_REJECTED
    BAD_RESPONSE = "ModelBadResponse"
    UNKNOWN_PROVIDER = names.UNKNOWN_MODEL_PROVIDER
