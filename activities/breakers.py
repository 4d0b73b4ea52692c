"""Circuit breakers, seen from the activities: fail fast while a breaker is open, and
report every call's outcome to the breaker every worker shares.

The state lives in a `CircuitBreaker` entity workflow per provider (`model:<provider>`)
or tool (`tool:<name>`). A worker reads it with the `state` query and caches it for a
second, so a closed breaker costs one query a second per worker, not one per call; it asks
for a probe (`acquire`) only when the breaker is open past its open period or half-open.
Outcomes are summed per breaker and sent as one `record` signal every half second.
A breaker that cannot be read is taken as closed: a broken breaker must not stop traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from opsready.entities import update_entity
from workflows.breaker_types import (
    BreakerConfig,
    BreakerInput,
    BreakerStatus,
    BreakerView,
    CallOutcome,
    Decision,
    OutcomeBatch,
)
from workflows.contract import (
    CIRCUIT_BREAKER_WORKFLOW,
    EntitySignal,
    ErrorType,
    Query,
    Update,
    breaker_id,
)

log = structlog.get_logger("opsready.breaker")

# Provider failures that say the provider is unwell; a rejected request, a rate limit or
# an unknown provider say nothing about its health, so they are not counted.
_MODEL_FAILURES: dict[str, CallOutcome] = {
    ErrorType.MODEL_SERVER_ERROR: "failure",
    ErrorType.MODEL_CONNECTION: "failure",
    ErrorType.MODEL_BAD_RESPONSE: "failure",
    ErrorType.MODEL_TIMEOUT: "timeout",
}


def model_outcome(err: BaseException | None) -> CallOutcome | None:
    """How a model call counts for its provider's breaker (None: not at all)."""
    if err is None:
        return "ok"
    if isinstance(err, ApplicationError):
        return _MODEL_FAILURES.get(err.type or "")
    if isinstance(err, asyncio.CancelledError):
        return None
    return "failure"


def open_error(name: str, decision: Decision) -> ApplicationError:
    """The typed, non-retryable error a call fails with while its breaker is open."""
    wait = f"; next probe in {decision.retry_after_s:.0f}s" if decision.retry_after_s else ""
    return ApplicationError(
        f"circuit breaker {name} is {decision.state.value}: {decision.reason}{wait}",
        type=ErrorType.CIRCUIT_OPEN,
        non_retryable=True,
    )


class BreakerGuard:
    def __init__(
        self,
        task_queue: str,
        config: BreakerConfig | None = None,
        *,
        cache_seconds: float = 1.0,
        flush_seconds: float = 0.5,
    ) -> None:
        self._task_queue = task_queue
        self.config = config or BreakerConfig()
        self._cache_seconds = cache_seconds
        self._flush_seconds = flush_seconds
        self._views: dict[str, tuple[float, BreakerView | None]] = {}
        self._pending: dict[str, OutcomeBatch] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._client: Client | None = None

    async def check(self, name: str) -> None:
        """Return when a call to `name` may go; raise the CircuitOpen error when not."""
        client = activity.client()
        self._client = client
        view = await self._view(client, name)
        if view is None or view.state.status is BreakerStatus.CLOSED:
            return
        state = view.state
        if state.status is BreakerStatus.OPEN and state.opened_at is not None:
            wait = state.opened_at.timestamp() + view.config.open_s - time.time()
            if wait > 0:
                reason = f"{name} is open: {state.last_reason}"
                decision = Decision(
                    allowed=False, state=state.status, retry_after_s=wait, reason=reason
                )
                raise open_error(name, decision)
        decision = await self._acquire(client, name)
        self._views.pop(name, None)  # it changed: read it afresh next time
        if not decision.allowed:
            raise open_error(name, decision)
        log.info("circuit breaker probe", breaker=name, reason=decision.reason)

    def report(self, name: str, outcome: CallOutcome | None, error: str | None = None) -> None:
        """Count one call's outcome; it reaches the breaker with the next batch."""
        if outcome is None:
            return
        with contextlib.suppress(RuntimeError):  # outside an activity: keep the last client
            self._client = activity.client()
        batch = self._pending.setdefault(name, OutcomeBatch())
        if outcome == "ok":
            batch.ok += 1
        elif outcome == "timeout":
            batch.timeouts += 1
        else:
            batch.failures += 1
            batch.last_error = (error or "")[:300] or batch.last_error
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def flush(self) -> None:
        """Send every pending batch now (also what the timer does)."""
        pending, self._pending = self._pending, {}
        client = self._client
        if client is None:
            return
        for name, batch in pending.items():
            try:
                await client.start_workflow(
                    CIRCUIT_BREAKER_WORKFLOW,
                    BreakerInput(name=name, config=self.config),
                    id=breaker_id(self._task_queue, name),
                    task_queue=self._task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    start_signal=EntitySignal.BREAKER_RECORD,
                    start_signal_args=[batch],
                    static_summary=f"circuit breaker: {name}",
                )
            except Exception as err:  # the next batch carries on; never fail a call for it
                log.warning("circuit breaker report lost", breaker=name, error=str(err))
            self._views.pop(name, None)

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._flush_seconds)
        await self.flush()

    async def _view(self, client: Client, name: str) -> BreakerView | None:
        cached = self._views.get(name)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        view: BreakerView | None = None
        try:
            handle = client.get_workflow_handle(breaker_id(self._task_queue, name))
            view = await handle.query(Query.STATE, result_type=BreakerView)
        except RPCError as err:
            if err.status is not RPCStatusCode.NOT_FOUND:
                log.warning(
                    "circuit breaker unreadable: taken as closed", breaker=name, error=str(err)
                )
        except Exception as err:
            log.warning("circuit breaker unreadable: taken as closed", breaker=name, error=str(err))
        self._views[name] = (time.monotonic(), view)
        return view

    async def _acquire(self, client: Client, name: str) -> Decision:
        try:
            return await update_entity(
                client,
                workflow=CIRCUIT_BREAKER_WORKFLOW,
                workflow_id=breaker_id(self._task_queue, name),
                task_queue=self._task_queue,
                start=BreakerInput(name=name, config=self.config),
                update=Update.BREAKER_ACQUIRE,
                result_type=Decision,
                summary=f"circuit breaker: {name}",
            )
        except Exception as err:
            log.warning(
                "circuit breaker probe not granted: taken as closed", breaker=name, error=str(err)
            )
            return Decision(allowed=True, state=BreakerStatus.CLOSED, reason="breaker unreadable")
