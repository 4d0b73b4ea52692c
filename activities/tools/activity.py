"""The tool activity: validate, run once per idempotency key, heartbeat while running.

Lean runs ask it to check the kill switches first, on the first attempt. The tool gets the run's user and tenant (data tools answer only for that caller) and its
own declared secrets. Write and destructive tools go through the side-effect ledger: the
intent before the call, the result after it. A tool whose circuit breaker is open fails
at once with the typed `CircuitOpen` error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.breakers import BreakerGuard
from activities.flags import FlagClient, checked_kill_switch
from activities.pacing import Pacer
from activities.tools.effects import EffectLedger
from activities.tools.ledger import Ledger
from activities.tools.registry import (
    ToolContext,
    ToolError,
    ToolRegistry,
    describe_validation_error,
)
from activities.tools.secrets import SecretStore
from opsready.telemetry import Telemetry
from workflows.contract import Activity, ErrorType
from workflows.payloads import KillSwitchCheck, KillSwitchInput, ToolCallInput, ToolCallResult
from workflows.policy import is_refused_while_unknown
from workflows.types import RiskTier

_HEARTBEAT_EVERY_SECONDS = 1.0


class ToolActivities:
    def __init__(
        self,
        registry: ToolRegistry,
        ledger: Ledger,
        telemetry: Telemetry | None = None,
        flags: FlagClient | None = None,
        *,
        effects: EffectLedger | None = None,
        secrets: SecretStore | None = None,
        breakers: BreakerGuard | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self._registry = registry
        self._pacer = pacer
        self._ledger = ledger  # the demo's downstream stand-in (refunds), also the default ledger
        self._effects: EffectLedger = effects or ledger
        self._secrets = secrets or SecretStore({})
        self._breakers = breakers
        self._telemetry = telemetry or Telemetry.create(span_processors=[], metric_readers=[])
        self._flags = flags

    @activity.defn(name=Activity.TOOL_RUN)
    async def run_tool(self, call: ToolCallInput) -> ToolCallResult:
        info = activity.info()
        waited = (info.started_time - info.current_attempt_scheduled_time).total_seconds()
        self._telemetry.queue_wait(info.activity_type, info.task_queue, waited)
        # First (lean runs): a killed tool never reaches its breaker, its pacer, the
        # side-effect ledger or its secrets.
        check = self._kill_switch(call)
        if check is not None and (check.is_killed or is_refused_while_unknown(call.risk_tier)):
            # Refused before it runs (a destructive tool too while a switch cannot be read:
            # fail closed); the run decides what follows.
            return ToolCallResult(ok=False, error=check.reason, kill_switch=check)
        with self._telemetry.tool_call(call) as observed:
            result = await self._run(call)
            observed.record(result)
        if check is not None:  # unknown, and the tool not destructive: it ran; the run is told
            return result.model_copy(update={"kill_switch": check})
        return result

    def _kill_switch(self, call: ToolCallInput) -> KillSwitchCheck | None:
        # On the first attempt only: a retry may follow a call that had its effect (the
        # ledger then answers with its result), which a refusal would misreport.
        if not call.check_kill_switch or activity.info().attempt > 1:
            return None
        request = KillSwitchInput(agent=call.agent, tool=call.tool, context=call.context)
        check = checked_kill_switch(self._flags, request)
        return check if check.is_killed or check.is_unknown else None

    async def _run(self, call: ToolCallInput) -> ToolCallResult:
        tool = self._registry.get(call.tool)
        if tool is None:
            raise ApplicationError(
                f"tool {call.tool!r} is not registered on this worker",
                type=ErrorType.UNKNOWN_TOOL,
                non_retryable=True,
            )
        try:
            args = tool.args.model_validate(call.arguments)
        except ValidationError as err:
            return ToolCallResult(
                ok=False, error="invalid arguments: " + describe_validation_error(err)
            )
        has_effects = tool.risk_tier is not RiskTier.READ
        if has_effects and call.simulate:
            # A shadow run: say what would have been done; no side effect, no ledger entry.
            return ToolCallResult(
                ok=True,
                output={
                    "simulated": True,
                    "tool": call.tool,
                    "arguments": args.model_dump(mode="json"),
                    "note": "shadow run: the call was not made",
                },
            )
        breaker = f"tool:{call.tool}"
        if self._breakers is not None:
            await self._breakers.check(breaker)
        if self._pacer is not None:
            await self._pacer.wait(activity.info().task_queue)
        is_resumed = False
        if has_effects:
            status = await self._effects.begin(call.idempotency_key, call.tool)
            if status.result is not None:
                activity.logger.info("tool %s replayed from ledger", call.tool)
                return ToolCallResult(**status.result, was_replayed=True)
            is_resumed = status.attempts > 1
            if is_resumed:
                activity.logger.warning(
                    "tool %s resumes attempt %d of key %s: an earlier one was interrupted",
                    call.tool,
                    status.attempts,
                    call.idempotency_key,
                )
        secrets = self._secrets.for_tool(tool)
        context = ToolContext(
            run_id=call.run_id,
            agent=call.agent,
            step=call.step,
            call_id=call.call_id,
            idempotency_key=call.idempotency_key,
            ledger=self._ledger,
            user_id=call.context.user_id,
            tenant_id=call.context.tenant_id,
            secrets=secrets,
            is_resumed=is_resumed,
        )
        heartbeat = asyncio.create_task(_heartbeat_forever())
        try:
            result = ToolCallResult(ok=True, output=await tool.fn(args, context))
        except ToolError as err:
            result = ToolCallResult(ok=False, error=str(err))
        except Exception as err:
            self._report(breaker, err)
            raise
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        self._report(breaker, None)
        result = _without_secrets(result, secrets.values())
        if has_effects:
            await self._effects.complete(
                call.idempotency_key,
                call.tool,
                result.model_dump(include={"ok", "output", "error"}),
            )
        return result

    def _report(self, breaker: str, err: Exception | None) -> None:
        if self._breakers is not None:
            self._breakers.report(breaker, "ok" if err is None else "failure", str(err or ""))


def _without_secrets(result: ToolCallResult, secrets: Iterable[str]) -> ToolCallResult:
    """The result with the tool's own secrets masked: whatever a tool returns goes into the
    run's history and the model's context, and a secret must reach neither."""
    values = [value for value in secrets if len(value) >= 4]
    if not values:
        return result
    text = result.model_dump_json()
    if not any(value in text for value in values):
        return result
    for value in values:
        text = text.replace(json.dumps(value)[1:-1], "[SECRET]")
    return ToolCallResult.model_validate_json(text)


async def _heartbeat_forever() -> None:
    """Tell Temporal the tool is alive, so a dead worker's call is retried within seconds."""
    while True:
        activity.heartbeat()
        await asyncio.sleep(_HEARTBEAT_EVERY_SECONDS)
