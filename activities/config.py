"""The config activity: resolve an agent's definition, model, price and tools, once per run.

Its result is recorded in history, so a replay never reads files (or, later, flags) again,
and `config_hash` says exactly which configuration a run used.
"""

from __future__ import annotations

import asyncio
import hashlib

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agents import load_agent, load_pricing
from activities.tools.registry import ToolRegistry
from opsready.errors import ConfigError, UnknownAgentError
from opsready.settings import Settings
from workflows import activity_names as names
from workflows.types import ResolveConfigInput, RunConfig


class ConfigActivities:
    def __init__(self, settings: Settings, registry: ToolRegistry) -> None:
        self._settings = settings
        self._registry = registry

    @activity.defn(name=names.RESOLVE_CONFIG)
    async def resolve_config(self, request: ResolveConfigInput) -> RunConfig:
        try:
            return await asyncio.to_thread(self.resolve, request)
        except UnknownAgentError as err:
            raise ApplicationError(str(err), type=names.UNKNOWN_AGENT, non_retryable=True) from None
        except ConfigError as err:
            raise ApplicationError(
                str(err), type=names.INVALID_AGENT_DEFINITION, non_retryable=True
            ) from None

    def resolve(self, request: ResolveConfigInput) -> RunConfig:
        agents_dir = self._settings.agents_dir
        definition, raw = load_agent(agents_dir, request.agent)
        path = agents_dir / f"{request.agent}.toml"
        model_name = self._settings.model_override or definition.model
        price = load_pricing(agents_dir).get(model_name)
        if price is None:
            raise ConfigError(
                f"{agents_dir / 'pricing.toml'}: no price for model {model_name!r}; add a "
                f'[models."{model_name}"] table (cost budgets cannot be enforced without it)'
            )
        tools = []
        for tool_name, policy in definition.tools.items():
            tool = self._registry.get(tool_name)
            if tool is None:
                raise ConfigError(
                    f"{path}: [tools.{tool_name}] names no registered tool "
                    f"(registered: {', '.join(self._registry.names())})"
                )
            tools.append(tool.spec(policy))
        provider, model = model_name.split("/", 1)
        config = RunConfig(
            agent=definition.name,
            agent_version=definition.version,
            config_hash="",
            prompt_version=definition.prompt_version,
            system_prompt=definition.prompts[definition.prompt_version].system,
            provider=provider,
            model=model,
            max_output_tokens=definition.max_output_tokens,
            model_timeout_seconds=self._settings.model_timeout_seconds,
            tools=tools,
            budgets=definition.budgets,
            price=price,
            approval=definition.approval,
        )
        digest = hashlib.sha256(raw + config.model_dump_json().encode()).hexdigest()[:16]
        return config.model_copy(update={"config_hash": digest})
