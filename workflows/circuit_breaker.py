"""`CircuitBreaker`: one provider's or tool's breaker as an entity workflow, so every
worker sees the same state.

Workers report call outcomes in batches (the `record` signal) and read the state with the
`state` query, caching it for a second; while it is closed that is all. A worker asks the
`acquire` update only when the breaker is open past its open period or half-open, so the
probes are handed out here, once. Continues as new before its history grows large.
Deterministic (workflow code): `CircuitBreaker` in `breaker_policy` decides.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior

from workflows.breaker_policy import CircuitBreaker
from workflows.breaker_types import (
    BreakerInput,
    BreakerStatus,
    BreakerView,
    Decision,
    OutcomeBatch,
)
from workflows.contract import CIRCUIT_BREAKER_WORKFLOW, EntitySignal, Query, Update

CONTINUE_AS_NEW_AFTER_EVENTS = 2_000


@workflow.defn(name=CIRCUIT_BREAKER_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class CircuitBreakerWorkflow:
    @workflow.init
    def __init__(self, start: BreakerInput) -> None:
        self._breaker = CircuitBreaker(start.name, start.config, start.state)

    @workflow.query(name=Query.STATE)
    def state(self) -> BreakerView:
        now = workflow.now()
        calls, failed = self._breaker.window_counts(now)
        state = self._breaker.snapshot()
        if (
            state.status is BreakerStatus.OPEN
            and state.opened_at is not None
            and (now - state.opened_at).total_seconds() >= self._breaker.config.open_s
        ):
            state.status = BreakerStatus.HALF_OPEN
        return BreakerView(
            state=state,
            config=self._breaker.config,
            calls_in_window=calls,
            failures_in_window=failed,
            as_of=now,
        )

    @workflow.signal(name=EntitySignal.BREAKER_RECORD)
    def record(self, batch: OutcomeBatch) -> None:
        before, now = self._breaker.status, workflow.now()
        # Failures last: a batch that ends a half-open probe run on a failure reopens it.
        for _ in range(batch.ok):
            self._breaker.record("ok", now)
        for _ in range(batch.timeouts):
            self._breaker.record("timeout", now)
        for _ in range(batch.failures):
            self._breaker.record("failure", now)
        self._changed(before, batch.last_error)

    @workflow.update(name=Update.BREAKER_ACQUIRE)
    def acquire(self) -> Decision:
        before = self._breaker.status
        decision = self._breaker.allow(workflow.now())
        self._changed(before, None)
        return decision

    @workflow.update(name=Update.BREAKER_RESET)
    def reset(self) -> BreakerView:
        """Close it now (an operator who knows the dependency is back)."""
        name, config = self._breaker.snapshot().name, self._breaker.config
        before = self._breaker.status
        self._breaker = CircuitBreaker(name, config)
        self._changed(before, None)
        return self.state()

    @workflow.run
    async def run(self, start: BreakerInput) -> None:
        self._changed(None, None)
        await workflow.wait_condition(
            lambda: (
                workflow.info().is_continue_as_new_suggested()
                or workflow.info().get_current_history_length() >= CONTINUE_AS_NEW_AFTER_EVENTS
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            BreakerInput(
                name=start.name, config=self._breaker.config, state=self._breaker.snapshot()
            )
        )

    def _changed(self, before: BreakerStatus | None, last_error: str | None) -> None:
        state = self._breaker.snapshot()
        if before is not None and state.status is not before:
            workflow.logger.warning(
                "circuit breaker %s: %s -> %s (%s)",
                state.name,
                before.value,
                state.status.value,
                state.last_reason or last_error or "",
            )
        lines = [f"**{state.name}**: {state.status.value}"]
        if state.status is not BreakerStatus.CLOSED and state.last_reason:
            lines.append(f"opened because {state.last_reason}")
        if last_error:
            lines.append(f"last error: {last_error[:200]}")
        workflow.set_current_details("\n\n".join(lines))
