"""The model activity: the kill switches when the run asks (lean runs), guardrails on the
input, the provider behind its circuit breaker (heartbeating, its retries jittered and
bounded by the fallback budget), then guardrails on the answer and a check of every
proposed tool call.

Checking here (not in the workflow) keeps schema validation next to the tool code; the
workflow gets calls that are either valid with normalised arguments, or carry an `error`
that it feeds back to the model instead of running them (or a `review` a human must
approve first). An open breaker fails the call at once with the typed `CircuitOpen`
error, which the workflow answers with the next model of the chain (or a human).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.breakers import BreakerGuard, model_outcome
from activities.flags import FlagClient, checked_kill_switch
from activities.models import guardrails
from activities.models.base import ModelProvider
from activities.models.retry import with_retry_delay
from activities.pacing import Pacer
from activities.tools.registry import ToolRegistry
from opsready.telemetry import Telemetry
from workflows.contract import Activity, ErrorType
from workflows.payloads import (
    ChatMessage,
    KillSwitchCheck,
    KillSwitchInput,
    ModelCallInput,
    ModelCallResult,
    ToolCallRequest,
    ToolSpec,
)
from workflows.policy import price_usage


class ModelActivities:
    def __init__(
        self,
        providers: Mapping[str, ModelProvider],
        registry: ToolRegistry,
        telemetry: Telemetry | None = None,
        breakers: BreakerGuard | None = None,
        pacer: Pacer | None = None,
        flags: FlagClient | None = None,
    ) -> None:
        self._providers = dict(providers)
        self._pacer = pacer
        self._registry = registry
        self._telemetry = telemetry or Telemetry.create(span_processors=[], metric_readers=[])
        self._breakers = breakers
        self._flags = flags

    @activity.defn(name=Activity.MODEL_CHAT)
    async def chat(self, request: ModelCallInput) -> ModelCallResult:
        info = activity.info()
        waited = (info.started_time - info.current_attempt_scheduled_time).total_seconds()
        self._telemetry.queue_wait(info.activity_type, info.task_queue, waited)
        # First (lean runs): a killed agent's call never reaches its guardrails, its
        # breaker, its provider's pacer or the provider.
        check = self._kill_switch(request)
        if check is not None and check.is_killed:  # no call: the run ends on the switch
            return ModelCallResult(
                message=ChatMessage(role="assistant"),
                input_tokens=0,
                output_tokens=0,
                finish_reason="kill_switch",
                kill_switch=check,
            )
        provider = self._providers.get(request.model.provider)
        if provider is None:
            known = ", ".join(sorted(self._providers))
            raise ApplicationError(
                f"no model provider {request.model.provider!r} on this worker (have: {known})",
                type=ErrorType.UNKNOWN_MODEL_PROVIDER,
                non_retryable=True,
            )
        request, input_report = guardrails.check_input(request)
        if input_report is not None and (input_report.blocked or input_report.review):
            stopped = guardrails.input_stopped(input_report)
            return stopped.model_copy(update={"kill_switch": check})
        breaker = f"model:{request.model.provider}"
        if self._breakers is not None and request.model.provider != "local":
            await self._check_breaker(breaker)
        heartbeat = asyncio.create_task(_heartbeat_forever())
        try:
            if self._pacer is not None:
                await self._pacer.wait(info.task_queue)
            with self._telemetry.model_call(request) as call:
                try:
                    result = await provider.complete(request)
                except ApplicationError as err:
                    self._report(breaker, request, err)
                    raise with_retry_delay(err, request.fallback_after) from None
                except BaseException as err:
                    self._report(breaker, request, err)
                    raise
                self._report(breaker, request, None)
                checked = [self._check(c, request.tools) for c in result.message.tool_calls]
                cost = price_usage(request.model.price, result.input_tokens, result.output_tokens)
                call.record(result, tool_calls=checked, cost_usd=cost)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        message = result.message.model_copy(update={"tool_calls": checked})
        # A switch that cannot be read does not stop a run in flight (a new run was refused
        # by the config activity): the run is told, and marks itself `flags_degraded`.
        result = result.model_copy(update={"message": message, "kill_switch": check})
        return guardrails.check_output(request, result, input_report)

    def _kill_switch(self, request: ModelCallInput) -> KillSwitchCheck | None:
        """When the run asked (lean runs): the switch that is on, or the check that could
        not read one (fail closed: a worker without flags cannot read any)."""
        if not request.check_kill_switch:
            return None
        check = checked_kill_switch(
            self._flags, KillSwitchInput(agent=request.agent, context=request.context)
        )
        return check if check.is_killed or check.is_unknown else None

    async def _check_breaker(self, breaker: str) -> None:
        assert self._breakers is not None
        try:
            await self._breakers.check(breaker)
        except ApplicationError:
            self._telemetry.instruments.breaker_rejections.add(1, {"breaker": breaker})
            raise

    def _report(self, breaker: str, request: ModelCallInput, err: BaseException | None) -> None:
        if self._breakers is not None and request.model.provider != "local":
            self._breakers.report(breaker, model_outcome(err), str(err) if err else None)

    def _check(self, call: ToolCallRequest, allowed: list[ToolSpec]) -> ToolCallRequest:
        if call.error is not None:
            return call
        if call.name not in {spec.name for spec in allowed}:
            names_ = ", ".join(spec.name for spec in allowed) or "none"
            return call.model_copy(
                update={"error": f"unknown tool {call.name!r}; available tools: {names_}"}
            )
        arguments, error = self._registry.validate(call.name, call.arguments)
        return call.model_copy(update={"arguments": arguments, "error": error})


async def _heartbeat_forever() -> None:
    """Tell Temporal the call is alive: a dead worker's call is retried, and a halt's
    cancellation reaches the HTTP call, within the heartbeat timeout (workflows.calls)."""
    while True:
        activity.heartbeat()
        await asyncio.sleep(1.0)
