"""Tools an agent may call: each with a pydantic argument schema, a risk tier and a timeout.

A tool function receives its validated arguments and a `ToolContext`: who the run is for
(user and tenant: data tools return only what that caller may see), the secrets the tool
declared (and no others), and the idempotency key (run id + step + call id). A tool with
side effects must pass that key to whatever it changes, so a retried call has no second
effect: the ledger cannot tell whether an interrupted attempt reached that system.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from activities.tools.ledger import Ledger
from opsready.agents import ToolPolicy
from workflows.payloads import ApprovalRule, ToolSpec
from workflows.types import RiskTier


class ToolError(Exception):
    """An expected failure (order not found, refund too large) shown to the model as is."""


@dataclass(frozen=True)
class ToolContext:
    run_id: str
    agent: str
    step: int
    call_id: str
    idempotency_key: str
    ledger: Ledger  # the demo's stand-in for a downstream system that takes the key
    user_id: str | None = None  # the run's caller: data tools answer only for them
    tenant_id: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict)  # only the tool's own
    # An earlier attempt with this key began and never recorded its result (a crash): it
    # may or may not have reached the downstream system, which must dedupe by the key.
    is_resumed: bool = False


ToolFn = Callable[[Any, ToolContext], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    risk_tier: RiskTier
    fn: ToolFn
    timeout_seconds: float = 30.0
    # Names of the secrets the tool needs (`OPSREADY_SECRET_<NAME>` or the secrets file);
    # the worker refuses to start when an agent enables the tool and one is missing.
    secrets: tuple[str, ...] = ()

    def spec(self, policy: ToolPolicy) -> ToolSpec:
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=_json_schema(self.args),
            risk_tier=self.risk_tier,
            timeout_seconds=policy.timeout_seconds or self.timeout_seconds,
            approval=ApprovalRule(
                mode=policy.approval, field=policy.threshold_field, threshold=policy.threshold
            ),
            limits=policy.limits,
        )


@functools.cache
def _json_schema(args: type[BaseModel]) -> dict[str, Any]:
    # Generated once per argument model: the config activity asks for every tool's schema
    # on every run, and generating one costs more than the rest of the config.
    return args.model_json_schema()


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"tool {tool.name!r} registered twice")
            self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def tools(self) -> list[Tool]:
        return [self._tools[name] for name in self.names()]

    def validate(self, name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Arguments as the tool will see them, or the original ones and an error for the model."""
        tool = self._tools.get(name)
        if tool is None:
            return arguments, f"unknown tool {name!r}"
        try:
            parsed = tool.args.model_validate(arguments)
        except ValidationError as err:
            return arguments, "invalid arguments: " + describe_validation_error(err)
        return parsed.model_dump(mode="json"), None


def describe_validation_error(err: ValidationError, limit: int = 3) -> str:
    parts = []
    for item in err.errors()[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "arguments"
        parts.append(f"{where}: {item['msg']}")
    more = len(err.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
