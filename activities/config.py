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

from activities.flag_choices import RUN_FLAGS, Choices, choose
from activities.flags import FlagClient, checked_kill_switch, evaluation_context
from activities.tools.registry import ToolRegistry
from opsready.agents import AgentDefinition, load_agent, load_pricing
from opsready.errors import ConfigError, UnknownAgentError
from opsready.settings import Settings
from workflows.answer_cache import is_cacheable
from workflows.contract import PAUSED_AGENTS_FLAG, Activity, ErrorType, activity_queue
from workflows.control_types import AnswerCachePolicy, QuotaPolicy, ScopeQuota
from workflows.payloads import (
    KillSwitchCheck,
    KillSwitchInput,
    ModelChoice,
    ModelRetryBudget,
    ResolveConfigInput,
    RunConfig,
    RunContext,
    ToolSpec,
)
from workflows.quota_types import QuotaLimits, QuotaScope, QuotaScopeKind
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
        self._refuse_if_paused(request)
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

    def _refuse_if_paused(self, request: ResolveConfigInput) -> None:
        """A paused agent (an incident's `pause_agent` step) starts no new run; the config
        is resolved once, at a run's start, so runs already open go on. A flag that cannot
        be read pauses nothing: the kill switch is the control that fails closed."""
        if self._flags is None:
            return
        paused = self._flags.evaluate(PAUSED_AGENTS_FLAG, evaluation_context(request.agent), [])
        if isinstance(paused.value, list) and request.agent in paused.value:
            raise ApplicationError(
                f"agent {request.agent} is paused (flag {PAUSED_AGENTS_FLAG}): new runs are "
                f"refused until it is taken off the list",
                type=ErrorType.AGENT_PAUSED,
                non_retryable=True,
            )

    def resolve(self, request: ResolveConfigInput) -> RunConfig:
        agents_dir = self._settings.agents_dir
        definition, raw = load_agent(agents_dir, request.agent)
        path = agents_dir / f"{request.agent}.toml"
        prices = load_pricing(agents_dir)
        evaluations = self._evaluate_flags(request)
        unavailable = self._flags.unavailable() if self._flags is not None else None
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
        if definition.answer_cache.enabled and not is_cacheable(tools):
            writers = ", ".join(t.name for t in tools if t.risk_tier.value != "read")
            raise ConfigError(
                f"{path}: answer_cache.enabled: only read-only agents may reuse answers "
                f"({writers} can change things); set enabled = false"
            )
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
            # Flag data that cannot be trusted (a file that does not parse, LaunchDarkly never
            # reached) degrades the run even where each evaluation looks fine.
            flags_degraded="; ".join(filter(None, [unavailable, *choices.problems])) or None,
            shadow=choices.shadow,
            is_shadow=request.shadow is not None,
            user_attribute=self._settings.user_attribute,
            model_retry=ModelRetryBudget(
                max_attempts=self._settings.model_fallback_after_attempts,
                max_seconds=self._settings.model_fallback_after_seconds,
            ),
            quotas=_quota_policy(choices, definition, request),
            breakers=definition.breakers,
            guardrails=definition.guardrails,
            answer_cache=(
                AnswerCachePolicy(ttl_seconds=definition.answer_cache.ttl_seconds)
                if definition.answer_cache.enabled and request.shadow is None
                else None
            ),
            activity_queues=self._activity_queues(models, tools),
        )
        digest = hashlib.sha256(raw + config.model_dump_json().encode()).hexdigest()[:16]
        return config.model_copy(
            update={"config_hash": digest, "kill_switch": self._kill_switch(request)}
        )

    def _kill_switch(self, request: ResolveConfigInput) -> KillSwitchCheck | None:
        """When the run asked (lean runs): the global or agent switch that is on, or the
        check that could not read one; either refuses the new run (fail closed)."""
        if not request.check_kill_switch:
            return None
        context = RunContext(user_id=request.user_id, tenant_id=request.tenant_id)
        check = checked_kill_switch(
            self._flags, KillSwitchInput(agent=request.agent, context=context)
        )
        return check if check.is_killed or check.is_unknown else None

    def _activity_queues(self, models: list[ModelChoice], tools: list[ToolSpec]) -> dict[str, str]:
        """The rate-limited providers and tools this run may call, and their task queues."""
        names = {f"model:{m.provider}" for m in models} | {f"tool:{t.name}" for t in tools}
        return {
            name: activity_queue(self._settings.task_queue, name)
            for name in sorted(names & set(self._settings.rate_limits))
        }

    def _evaluate_flags(self, request: ResolveConfigInput) -> list[FlagEvaluation]:
        if self._flags is None:
            return []
        context = evaluation_context(
            request.agent, RunContext(user_id=request.user_id, tenant_id=request.tenant_id)
        )
        return [self._flags.evaluate(key, context, default) for key, default in RUN_FLAGS.items()]


def _quota_policy(
    choices: Choices, definition: AgentDefinition, request: ResolveConfigInput
) -> QuotaPolicy | None:
    """The ledgers this run counts against: each limited scope it has an id for. None when
    nothing is limited, so a run without quotas makes no ledger calls. Shadow runs spend
    too, so they count like any other run."""
    ids = {
        QuotaScopeKind.USER: request.user_id,
        QuotaScopeKind.TENANT: request.tenant_id,
        QuotaScopeKind.AGENT: definition.name,
    }
    scopes = []
    for kind, scope_id in ids.items():
        limits: QuotaLimits | None = getattr(choices.quotas, kind.value)
        if scope_id and limits is not None and limits != QuotaLimits():
            scopes.append(ScopeQuota(scope=QuotaScope(kind=kind, id=scope_id), limits=limits))
    if not scopes:
        return None
    return QuotaPolicy(scopes=scopes, on_exceeded=choices.quotas.on_exceeded)
