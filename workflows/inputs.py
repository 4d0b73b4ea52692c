"""What `AgentRun` receives from outside, decoded leniently and validated in workflow code.

Anything can start a run or send it a signal (the Temporal UI, the `temporal` CLI, service
code without `OpsreadyClient`). A payload the SDK cannot decode into the declared type
fails the workflow task on every attempt (a bad start) or is dropped with a log line (a
bad signal). So handlers take the payloads as plain JSON values and validate them here:
a bad one is a one-line problem the run records, never a wedged task or a lost signal.
Deterministic (workflow code).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from workflows.types import AgentRunRequest

M = TypeVar("M", bound=BaseModel)

_MAX_PROBLEM_CHARS = 300
UNKNOWN_AGENT = "?"


def one_line(err: ValidationError) -> str:
    """The first problem of a validation error as `field: message` (the input, unnamed)."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "payload"
    message = str(first["msg"]).removeprefix("Value error, ")
    more = len(err.errors()) - 1
    return _short(f"{where}: {message}" + (f" (and {more} more)" if more else ""))


def decode(model: type[M], args: Sequence[Any]) -> tuple[M | None, str | None]:
    """`args` (a handler's payloads, as JSON values) as one `model`, or why not."""
    if len(args) != 1:
        return None, f"expected one {model.__name__} payload, got {len(args)}"
    value = args[0]
    if not isinstance(value, dict):
        return None, f"expected a JSON object ({model.__name__}), got {_kind(value)}"
    try:
        return model.model_validate(value), None
    except ValidationError as err:
        return None, one_line(err)


def decode_request(args: Sequence[Any]) -> tuple[AgentRunRequest, str | None]:
    """The run's request, or a stand-in (the agent name when one can be read) and why the
    request is invalid: the run then ends `failed` with `stop_reason = invalid_request`."""
    request, problem = decode(AgentRunRequest, args)
    if request is not None:
        return request, None
    agent = args[0].get("agent") if len(args) == 1 and isinstance(args[0], dict) else None
    name = agent if isinstance(agent, str) and 0 < len(agent) <= 100 else UNKNOWN_AGENT
    return AgentRunRequest.model_construct(agent=name, input=""), f"invalid request: {problem}"


def text_field(args: Sequence[Any], name: str, max_chars: int = 200) -> str | None:
    """A usable string field of a malformed payload (who sent a bad halt), if there is one."""
    value = args[0].get(name) if len(args) == 1 and isinstance(args[0], dict) else None
    if isinstance(value, str) and value.strip() and len(value) <= max_chars:
        return value
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), f"a JSON {type(value).__name__}")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_PROBLEM_CHARS else text[: _MAX_PROBLEM_CHARS - 1] + "…"
