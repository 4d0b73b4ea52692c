"""The tool activity: validate, run once per idempotency key, heartbeat while running."""

from __future__ import annotations

import asyncio
import contextlib

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.flags import FlagClient, checked_kill_switch
from activities.tools.ledger import Ledger
from activities.tools.registry import (
    ToolContext,
    ToolError,
    ToolRegistry,
    describe_validation_error,
)
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
    ) -> None:
        self._registry = registry
        self._ledger = ledger
        self._telemetry = telemetry or Telemetry.create(span_processors=[], metric_readers=[])
        self._flags = flags

    @activity.defn(name=Activity.TOOL_RUN)
    async def run_tool(self, call: ToolCallInput) -> ToolCallResult:
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
        if has_effects:
            stored = await self._ledger.stored_result(call.idempotency_key)
            if stored is not None:
                activity.logger.info("tool %s replayed from ledger", call.tool)
                return ToolCallResult(**stored, was_replayed=True)
        context = ToolContext(
            run_id=call.run_id,
            agent=call.agent,
            step=call.step,
            call_id=call.call_id,
            idempotency_key=call.idempotency_key,
            ledger=self._ledger,
        )
        heartbeat = asyncio.create_task(_heartbeat_forever())
        try:
            result = ToolCallResult(ok=True, output=await tool.fn(args, context))
        except ToolError as err:
            result = ToolCallResult(ok=False, error=str(err))
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        if has_effects:
            await self._ledger.store_result(
                call.idempotency_key,
                call.tool,
                result.model_dump(include={"ok", "output", "error"}),
            )
        return result


async def _heartbeat_forever() -> None:
    """Tell Temporal the tool is alive, so a dead worker's call is retried within seconds."""
    while True:
        activity.heartbeat()
        await asyncio.sleep(_HEARTBEAT_EVERY_SECONDS)
