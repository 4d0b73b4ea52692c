"""Where tool side effects are recorded: the embedded SQLite ledger (one per host, the
default) or the shared one, a `SideEffect` entity workflow per idempotency key that every
worker host reaches through Temporal (`OPSREADY_LEDGER=temporal`, docs/decisions.md).

Both keep the intent (an attempt began) before the call and the result after it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from activities.tools.ledger import Ledger
from opsready.entities import update_entity
from opsready.settings import Settings
from workflows.contract import SIDE_EFFECT_WORKFLOW, Update, side_effect_id
from workflows.effect_types import EffectResult, EffectStart, EffectStatus

# An intent nobody completes (its run gave up) is dropped after a week.
ABANDONED_AFTER = timedelta(days=7)


class EffectLedger(Protocol):
    async def begin(self, key: str, tool: str) -> EffectStatus:
        """Record that an attempt begins; the stored result when the effect is done."""
        ...

    async def complete(self, key: str, tool: str, result: dict[str, Any]) -> None:
        """Keep the result for every later attempt with the key."""
        ...


class TemporalEffectLedger:
    """One `SideEffect` workflow per key, on the workers' task queue; the activity's own
    client reaches it (the ledger needs no connection or credentials of its own)."""

    def __init__(self, task_queue: str) -> None:
        self._task_queue = task_queue

    async def begin(self, key: str, tool: str) -> EffectStatus:
        try:
            return await self._update(key, tool, Update.EFFECT_BEGIN, None)
        except RPCError as err:
            if err.status is not RPCStatusCode.ALREADY_EXISTS:
                raise
            # Done long enough ago that the record has ended: its result is the answer.
            handle = activity.client().get_workflow_handle(
                side_effect_id(self._task_queue, key), result_type=EffectStatus
            )
            status: EffectStatus = await handle.result()
            return status

    async def complete(self, key: str, tool: str, result: dict[str, Any]) -> None:
        await self._update(key, tool, Update.EFFECT_COMPLETE, EffectResult(result=result))

    async def _update(
        self, key: str, tool: str, update: str, arg: EffectResult | None
    ) -> EffectStatus:
        extra: dict[str, Any] = {} if arg is None else {"arg": arg}
        return await update_entity(
            activity.client(),
            workflow=SIDE_EFFECT_WORKFLOW,
            workflow_id=side_effect_id(self._task_queue, key),
            task_queue=self._task_queue,
            start=EffectStart(key=key, tool=tool),
            update=update,
            result_type=EffectStatus,
            summary=f"side effect: {tool} {key}",
            execution_timeout=ABANDONED_AFTER,
            **extra,
        )


def effect_ledger(settings: Settings, embedded: Ledger) -> EffectLedger:
    """The ledger the settings choose: the embedded SQLite one, or the shared one."""
    if settings.ledger == "temporal":
        return TemporalEffectLedger(settings.task_queue)
    return embedded
