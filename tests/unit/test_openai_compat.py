"""The OpenAI-compatible provider against a real loopback HTTP server: wire shape, parsing,
and how each failure is classified for Temporal's retries."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.exceptions import ApplicationError

from activities.models.openai_compat import OpenAICompatProvider
from tests.fakes.openai_server import FakeOpenAI
from workflows.contract import ErrorType
from workflows.payloads import (
    ChatMessage,
    ModelCallInput,
    ModelChoice,
    ModelPrice,
    ToolCallRequest,
    ToolSpec,
)
from workflows.types import RiskTier

KEY = "sk-test-unit-4f9a1c"

LOOKUP = ToolSpec(
    name="lookup_order",
    description="Look up an order by id.",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
    risk_tier=RiskTier.READ,
)


PRICE = ModelPrice(input_per_million_usd=1.0, output_per_million_usd=2.0)


def request(*messages: ChatMessage, tools: list[ToolSpec] | None = None) -> ModelCallInput:
    return ModelCallInput(
        run_id="run-1",
        agent="tester",
        step=1,
        model=ModelChoice(model="openai/gpt-test", price=PRICE),
        prompt_version="v1",
        messages=list(messages) or [ChatMessage(role="user", content="hi")],
        tools=tools or [],
        max_output_tokens=256,
    )


@pytest.fixture
async def provider(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAICompatProvider]:
    model = OpenAICompatProvider(fake_openai.base_url, api_key=KEY, timeout_seconds=5)
    yield model
    await model.aclose()


async def failure(provider: OpenAICompatProvider) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await provider.complete(request())
    return caught.value


async def test_request_carries_model_messages_tools_and_bearer_key(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    conversation = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Where is A-1001?"),
        ChatMessage(
            role="assistant",
            tool_calls=[
                ToolCallRequest(id="call_1", name="lookup_order", arguments={"order_id": "A-1001"})
            ],
        ),
        ChatMessage(role="tool", tool_call_id="call_1", name="lookup_order", content='{"ok":1}'),
    ]
    await provider.complete(request(*conversation, tools=[LOOKUP]))

    [sent] = fake_openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "gpt-test"
    assert sent.body["max_tokens"] == 256
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is A-1001?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_order", "arguments": '{"order_id": "A-1001"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"ok":1}'},
    ]
    assert sent.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Look up an order by id.",
                "parameters": LOOKUP.parameters,
            },
        }
    ]


async def test_no_key_sends_no_authorization_and_no_tools_sends_no_tools_field(
    fake_openai: FakeOpenAI,
) -> None:
    provider = OpenAICompatProvider(fake_openai.base_url, api_key=None, timeout_seconds=5)
    try:
        await provider.complete(request())
    finally:
        await provider.aclose()
    [sent] = fake_openai.requests
    assert "authorization" not in sent.headers
    assert "tools" not in sent.body


async def test_plain_reply_is_parsed_with_usage_and_finish_reason(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply("Your order shipped.", usage=(42, 7), finish_reason="length")
    result = await provider.complete(request())
    assert result.message == ChatMessage(role="assistant", content="Your order shipped.")
    assert (result.input_tokens, result.output_tokens) == (42, 7)
    assert result.finish_reason == "length"


async def test_missing_usage_counts_zero_tokens(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply("ok", usage=None)
    result = await provider.complete(request())
    assert (result.input_tokens, result.output_tokens) == (0, 0)


async def test_tool_calls_are_parsed_into_requests_with_arguments(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(tool_calls=[("lookup_order", {"order_id": "A-1001"}), ("search_kb", "")])
    result = await provider.complete(request(tools=[LOOKUP]))
    assert result.message.tool_calls == [
        ToolCallRequest(id="call_1", name="lookup_order", arguments={"order_id": "A-1001"}),
        ToolCallRequest(id="call_2", name="search_kb", arguments={}),
    ]
    assert result.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [('{"order_id": "A-1', "not valid JSON"), ('["A-1001"]', "must be a JSON object")],
)
async def test_bad_tool_arguments_become_a_call_with_an_error_not_an_exception(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI, arguments: str, complaint: str
) -> None:
    fake_openai.reply(tool_calls=[("lookup_order", arguments)])
    result = await provider.complete(request(tools=[LOOKUP]))
    [call] = result.message.tool_calls
    assert call.name == "lookup_order" and call.arguments == {}
    assert call.error is not None and complaint in call.error


async def test_429_with_retry_after_is_retryable_rate_limit_with_that_delay(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail(429, headers={"Retry-After": "7"})
    err = await failure(provider)
    assert err.type == ErrorType.MODEL_RATE_LIMITED and not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=7)


async def test_retry_after_as_http_date_is_honoured_and_capped(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail(429, headers={"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"})
    err = await failure(provider)
    assert err.next_retry_delay == timedelta(seconds=120)


async def test_429_without_retry_after_leaves_the_delay_to_the_retry_policy(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail(429)
    err = await failure(provider)
    assert err.type == ErrorType.MODEL_RATE_LIMITED and err.next_retry_delay is None


@pytest.mark.parametrize("status", [500, 503, 408, 409])
async def test_server_errors_are_retryable(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI, status: int
) -> None:
    fake_openai.fail(status)
    err = await failure(provider)
    assert err.type == ErrorType.MODEL_SERVER_ERROR and not err.non_retryable
    assert str(status) in err.message


async def test_400_is_rejected_for_good_with_the_provider_message_and_without_the_key(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    echoed = f"Invalid value for 'max_tokens' (request used key {KEY}). " + "x" * 500
    fake_openai.fail(400, body={"error": {"message": echoed}})
    err = await failure(provider)
    assert err.type == ErrorType.MODEL_REQUEST_REJECTED and err.non_retryable
    assert "HTTP 400" in err.message and "Invalid value for 'max_tokens'" in err.message
    assert KEY not in err.message
    assert len(err.message) < 400


async def test_error_without_json_body_uses_its_text(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail(404, body="model gpt-test does not exist")
    err = await failure(provider)
    assert err.type == ErrorType.MODEL_REQUEST_REJECTED and err.non_retryable
    assert "model gpt-test does not exist" in err.message


async def test_slow_server_beyond_the_timeout_is_a_retryable_timeout(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.delay(5)
    provider = OpenAICompatProvider(fake_openai.base_url, api_key=KEY, timeout_seconds=0.3)
    try:
        err = await failure(provider)
    finally:
        await provider.aclose()
    assert err.type == ErrorType.MODEL_TIMEOUT and not err.non_retryable


async def test_refused_connection_is_a_retryable_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    provider = OpenAICompatProvider(f"http://127.0.0.1:{port}/v1", api_key=KEY, timeout_seconds=2)
    try:
        err = await failure(provider)
    finally:
        await provider.aclose()
    assert err.type == ErrorType.MODEL_CONNECTION and not err.non_retryable
    assert KEY not in err.message


@pytest.mark.parametrize(
    "body",
    ["<html>502 Bad Gateway</html>", '{"choices": []}', '{"id": "x"}', '{"choices": [{}]}'],
)
async def test_malformed_body_is_a_retryable_bad_response(
    provider: OpenAICompatProvider, fake_openai: FakeOpenAI, body: str
) -> None:
    fake_openai.raw(200, body)
    err = await failure(provider)
    assert err.type == ErrorType.MODEL_BAD_RESPONSE and not err.non_retryable


async def test_http_call_is_a_child_span_and_propagates_the_trace(fake_openai: FakeOpenAI) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tracer_provider.get_tracer("test")
    model = OpenAICompatProvider(
        fake_openai.base_url, api_key=KEY, timeout_seconds=5, tracer=tracer
    )
    with tracer.start_as_current_span("activity") as parent:
        await model.complete(request())
    await model.aclose()

    http = next(span for span in spans.get_finished_spans() if span.name == "POST")
    assert http.parent is not None
    assert http.parent.span_id == parent.get_span_context().span_id
    assert http.attributes is not None
    assert http.attributes["http.response.status_code"] == 200
    assert str(http.attributes["url.full"]).endswith("/chat/completions")
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert trace_id in fake_openai.requests[0].headers["traceparent"]
