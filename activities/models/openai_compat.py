"""A provider for any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM, Ollama…).

It never retries: each failure becomes an `ApplicationError` typed by `ErrorType`, and the
model activity's RetryPolicy decides; a 429's Retry-After reaches it as `next_retry_delay`.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel, Field, ValidationError
from temporalio.exceptions import ApplicationError

from opsready.errors import one_line
from workflows.contract import ErrorType
from workflows.payloads import ChatMessage, ModelCallInput, ModelCallResult, ToolCallRequest

_MAX_RETRY_AFTER_SECONDS = 120.0
_MAX_ERROR_CHARS = 300
_RETRYABLE_STATUSES = {408, 409}
_TOOL_FIELDS = {"name", "description", "parameters"}


# The parts of a completion this provider reads; other fields are ignored.
class _Function(BaseModel):
    name: str
    arguments: str | dict[str, Any] | None = None


class _ToolCall(BaseModel):
    id: str
    function: _Function


class _Message(BaseModel):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None


class _Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _Completion(BaseModel):
    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


class OpenAICompatProvider:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._tracer = tracer or trace.get_tracer("opsready.http")
        self._api_key = api_key
        self._timeout_seconds = timeout_seconds
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout_seconds, transport=transport
        )

    async def complete(self, request: ModelCallInput) -> ModelCallResult:
        body: dict[str, Any] = {
            "model": request.model.name,
            "messages": [_wire_message(m) for m in request.messages],
            "max_tokens": request.max_output_tokens,
        }
        if request.tools:
            body["tools"] = [
                {"type": "function", "function": t.model_dump(include=_TOOL_FIELDS)}
                for t in request.tools
            ]
        try:
            # httpx's timeout bounds each read; a server that trickles bytes is bounded here.
            async with asyncio.timeout(self._timeout_seconds):
                response = await self._post(body)
        except TimeoutError:
            raise self._error(
                f"no complete answer within {self._timeout_seconds:g}s", ErrorType.MODEL_TIMEOUT
            ) from None
        except httpx.TimeoutException as err:
            raise self._error(
                f"no answer within the timeout ({type(err).__name__})", ErrorType.MODEL_TIMEOUT
            ) from None
        except httpx.UnsupportedProtocol as err:
            raise self._error(
                f"bad base URL: {err}", ErrorType.MODEL_REQUEST_REJECTED, non_retryable=True
            ) from None
        except httpx.RequestError as err:
            raise self._error(f"{type(err).__name__}: {err}", ErrorType.MODEL_CONNECTION) from None
        if response.is_success:
            return self._parse(response)
        raise self._status_error(response)

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        """The HTTP call as a client span under the caller's (model) span, with the trace
        context propagated to the server in `traceparent`."""
        url = self._client.base_url.join("chat/completions")
        with self._tracer.start_as_current_span(
            "POST",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "url.full": str(url),
                "server.address": url.host,
                "server.port": url.port or (443 if url.scheme == "https" else 80),
            },
        ) as span:
            headers: dict[str, str] = {}
            inject(headers)
            response = await self._client.post(url, json=body, headers=headers)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_attribute("error.type", str(response.status_code))
                span.set_status(StatusCode.ERROR)
            return response

    async def aclose(self) -> None:
        await self._client.aclose()

    def _status_error(self, response: httpx.Response) -> ApplicationError:
        status = response.status_code
        detail = f"HTTP {status}: {_provider_message(response)}"
        if status == 429:
            return self._error(
                detail, ErrorType.MODEL_RATE_LIMITED, next_retry_delay=_retry_after(response)
            )
        if status >= 500 or status in _RETRYABLE_STATUSES:
            return self._error(detail, ErrorType.MODEL_SERVER_ERROR)
        return self._error(detail, ErrorType.MODEL_REQUEST_REJECTED, non_retryable=True)

    def _parse(self, response: httpx.Response) -> ModelCallResult:
        # BAD_RESPONSE stays retryable: a garbled or truncated answer (a proxy page, a cut
        # stream) is usually transient, and the next sample of the model may be well formed.
        try:
            completion = _Completion.model_validate_json(response.content)
        except ValidationError as err:
            raise self._error(
                f"malformed completion ({one_line(err, default_field='body')})",
                ErrorType.MODEL_BAD_RESPONSE,
            ) from None
        choice = completion.choices[0]
        calls = [_tool_call(call) for call in choice.message.tool_calls or []]
        usage = completion.usage or _Usage()
        return ModelCallResult(
            message=ChatMessage(role="assistant", content=choice.message.content, tool_calls=calls),
            input_tokens=usage.prompt_tokens or 0,
            output_tokens=usage.completion_tokens or 0,
            finish_reason=choice.finish_reason or ("tool_calls" if calls else "stop"),
        )

    def _error(
        self,
        detail: str,
        type_: str,
        *,
        non_retryable: bool = False,
        next_retry_delay: timedelta | None = None,
    ) -> ApplicationError:
        # Redact before truncating, so a key cut in half cannot leak either.
        if self._api_key:
            detail = detail.replace(self._api_key, "[REDACTED]")
        if len(detail) > _MAX_ERROR_CHARS:
            detail = detail[: _MAX_ERROR_CHARS - 1] + "…"
        return ApplicationError(
            f"{self.name} model endpoint: {detail}",
            type=type_,
            non_retryable=non_retryable,
            next_retry_delay=next_retry_delay,
        )


def _wire_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.content or "",
        }
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return wire


def _tool_call(call: _ToolCall) -> ToolCallRequest:
    """Bad arguments become an `error` the workflow feeds back, so the model can fix them."""
    raw = call.function.arguments
    request = ToolCallRequest(id=call.id, name=call.function.name)
    if isinstance(raw, dict):
        return request.model_copy(update={"arguments": raw})
    if raw is None or not raw.strip():
        return request
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError as err:
        return request.model_copy(update={"error": f"arguments are not valid JSON ({err})"})
    if not isinstance(arguments, dict):
        kind = type(arguments).__name__
        return request.model_copy(update={"error": f"arguments must be a JSON object, not {kind}"})
    return request.model_copy(update={"arguments": arguments})


def _provider_message(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text
    return str(message).strip() or response.reason_phrase


def _retry_after(response: httpx.Response) -> timedelta | None:
    """Retry-After in seconds or as an HTTP date, capped; None when absent or unusable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if seconds <= 0:
        return None
    return timedelta(seconds=min(seconds, _MAX_RETRY_AFTER_SECONDS))
