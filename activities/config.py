"""The config activity: resolve an agent's definition, model, price and tools, once per run.

Its result is recorded in history, so a replay never reads files or evaluates flags again,
and `config_hash` says exactly which configuration a run used. The run's flags (variant,
prompt version, model, fallback, tools, budgets, shadow) are evaluated here, for the run's
user, tenant and agent; when they cannot be, the agent's defaults apply and the run is
marked degraded.
"""

from __future__ import annotations

import asyncio
import hashlib

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.flag_choices import RUN_FLAGS, choose
from activities.flags import FlagClient, check_kill_switch, evaluation_context
from activities.tools.registry import ToolRegistry
from opsready.agents import load_agent, load_pricing
from opsready.errors import ConfigError, UnknownAgentError
from opsready.settings import Settings
from workflows.contract import Activity, ErrorType
from workflows.payloads import (
    KillSwitchCheck,
    KillSwitchInput,
    ModelChoice,
    ResolveConfigInput,
    RunConfig,
    RunContext,
)
from workflows.types import FlagEvaluation


class ConfigActivities:
    def __init__(
        self, settings: Settings, registry: ToolRegistry, flags: FlagClient | None = None
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._flags = flags

    @activity.defn(name=Activity.RESOLVE_CONFIG)
    async def resolve_config(self, request: ResolveConfigInput) -> RunConfig:
        try:
            return await asyncio.to_thread(self.resolve, request)
        except UnknownAgentError as err:
            raise ApplicationError(
                str(err), type=ErrorType.UNKNOWN_AGENT, non_retryable=True
            ) from None
        except ConfigError as err:
            raise ApplicationError(
                str(err), type=ErrorType.INVALID_AGENT_DEFINITION, non_retryable=True
            ) from None

    def resolve(self, request: ResolveConfigInput) -> RunConfig:
        agents_dir = self._settings.agents_dir
        definition, raw = load_agent(agents_dir, request.agent)
        path = agents_dir / f"{request.agent}.toml"
        prices = load_pricing(agents_dir)
        evaluations = self._evaluate_flags(request)
        choices = choose(
            definition,
            {e.key: e for e in evaluations},
            prices,
            model_override=self._settings.model_override,
            shadow_of=request.shadow,
            run_id=request.run_id,
        )
        models = []
        for model in choices.models:
            price = prices.get(model)
            if price is None:
                raise ConfigError(
                    f"{agents_dir / 'pricing.toml'}: no price for model {model!r}; add a "
                    f'[models."{model}"] table (cost budgets cannot be enforced without it)'
                )
            models.append(ModelChoice(model=model, price=price))
        tools = []
        for tool_name in choices.tools:
            tool = self._registry.get(tool_name)
            if tool is None:
                raise ConfigError(
                    f"{path}: [tools.{tool_name}] names no registered tool "
                    f"(registered: {', '.join(self._registry.names())})"
                )
            tools.append(tool.spec(definition.tools[tool_name]))
        config = RunConfig(
            agent=definition.name,
            agent_version=definition.version,
            config_hash="",
            prompt_version=choices.prompt_version,
            system_prompt=definition.prompts[choices.prompt_version].system,
            models=models,
            variant=choices.variant,
            max_output_tokens=definition.max_output_tokens,
            model_timeout_seconds=self._settings.model_timeout_seconds,
            tools=tools,
            budgets=choices.budgets,
            approval=definition.approval,
            flags=evaluations,
            flags_degraded="; ".join(choices.problems) or None,
            shadow=choices.shadow,
            is_shadow=request.shadow is not None,
        )
        digest = hashlib.sha256(raw + config.model_dump_json().encode()).hexdigest()[:16]
        return config.model_copy(
            update={"config_hash": digest, "kill_switch": self._kill_switch(request)}
        )

    def _kill_switch(self, request: ResolveConfigInput) -> KillSwitchCheck | None:
        """The global or agent switch that is on, when the run asked (it is then refused)."""
        if not request.check_kill_switch or self._flags is None:
            return None
        context = RunContext(user_id=request.user_id, tenant_id=request.tenant_id)
        check = check_kill_switch(
            self._flags, KillSwitchInput(agent=request.agent, context=context)
        )
        return check if check.is_killed else None

    def _evaluate_flags(self, request: ResolveConfigInput) -> list[FlagEvaluation]:
        if self._flags is None:
            return []
        context = evaluation_context(
            request.agent, RunContext(user_id=request.user_id, tenant_id=request.tenant_id)
        )
        return [self._flags.evaluate(key, context, default) for key, default in RUN_FLAGS.items()]
