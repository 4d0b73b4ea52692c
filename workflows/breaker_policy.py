"""A circuit breaker for one provider or tool: closed, open, half-open.

Pure and deterministic (callers pass the time, `workflow.now()` in a workflow), so the
state can live in workflow code and replay exactly. Outcomes are counted in time buckets
over a sliding window, so memory stays bounded however many calls are made.
"""

from __future__ import annotations

import math
from datetime import datetime

from workflows.breaker_types import (
    BreakerBucket,
    BreakerConfig,
    BreakerState,
    BreakerStatus,
    CallOutcome,
    Decision,
)


class CircuitBreaker:
    """Decides whether a call may go (`allow`) and learns from its outcome (`record`).

    In half-open, `allow` hands out at most `half_open_probes` probes; if the probes'
    outcomes never arrive (their caller died), new probes are handed out after another
    `open_s`, so the breaker cannot stay stuck half-open.
    """

    def __init__(
        self, name: str, config: BreakerConfig | None = None, state: BreakerState | None = None
    ) -> None:
        self.config = config or BreakerConfig()
        self._state = state.model_copy(deep=True) if state else BreakerState(name=name)

    @property
    def status(self) -> BreakerStatus:
        return self._state.status

    def snapshot(self) -> BreakerState:
        return self._state.model_copy(deep=True)

    def allow(self, at: datetime) -> Decision:
        state, config, now = self._state, self.config, at.timestamp()
        if state.status is BreakerStatus.OPEN:
            assert state.opened_at is not None
            wait = state.opened_at.timestamp() + config.open_s - now
            if wait > 0:
                return self._refuse(wait, f"{state.name} is open: {state.last_reason}")
            self._half_open(at)
        if state.status is BreakerStatus.HALF_OPEN:
            assert state.half_open_at is not None
            since = now - state.half_open_at.timestamp()
            if state.probes_allowed >= config.half_open_probes and since >= config.open_s:
                self._half_open(at)  # the probes never reported back: try again
            if state.probes_allowed >= config.half_open_probes:
                wait = state.half_open_at.timestamp() + config.open_s - now
                return self._refuse(wait, f"{state.name} is half-open: waiting for its probes")
            state.probes_allowed += 1
            return Decision(
                allowed=True,
                state=state.status,
                reason=f"probe {state.probes_allowed} of {config.half_open_probes}",
            )
        return Decision(allowed=True, state=state.status, reason="closed")

    def record(self, outcome: CallOutcome, at: datetime) -> BreakerStatus:
        """Count one call's outcome; the status after it."""
        state = self._state
        if state.status is BreakerStatus.HALF_OPEN:
            if outcome == "ok":
                state.probe_successes += 1
                if state.probe_successes >= self.config.half_open_probes:
                    self._close()
            else:
                self._open(at, f"probe {outcome} while half-open")
            return state.status
        self._count(outcome, at)
        if state.status is BreakerStatus.CLOSED and outcome != "ok":
            calls, failed = self.window_counts(at)
            if calls >= self.config.min_calls and failed / calls >= self.config.failure_rate:
                self._open(
                    at, f"{failed} of {calls} calls failed in the last {self.config.window_s:g}s"
                )
        return state.status

    def window_counts(self, at: datetime) -> tuple[int, int]:
        """(calls, failed calls) within the window ending at `at`."""
        self._drop_old(self._index(at))
        calls = sum(b.ok + b.failures + b.timeouts for b in self._state.buckets)
        failed = sum(b.failures + b.timeouts for b in self._state.buckets)
        return calls, failed

    def _count(self, outcome: CallOutcome, at: datetime) -> None:
        index = self._index(at)
        self._drop_old(index)
        buckets = self._state.buckets
        bucket = next((b for b in buckets if b.index == index), None)
        if bucket is None:
            if buckets and index < buckets[0].index:
                return  # older than the window: it no longer tells anything
            bucket = BreakerBucket(index=index)
            buckets.append(bucket)
            buckets.sort(key=lambda b: b.index)
        if outcome == "ok":
            bucket.ok += 1
        elif outcome == "failure":
            bucket.failures += 1
        else:
            bucket.timeouts += 1

    def _index(self, at: datetime) -> int:
        return math.floor(at.timestamp() / (self.config.window_s / self.config.buckets))

    def _drop_old(self, index: int) -> None:
        oldest = index - self.config.buckets + 1
        self._state.buckets = [b for b in self._state.buckets if b.index >= oldest]

    def _open(self, at: datetime, reason: str) -> None:
        state = self._state
        state.status, state.opened_at, state.last_reason = BreakerStatus.OPEN, at, reason
        state.half_open_at, state.probes_allowed, state.probe_successes = None, 0, 0

    def _half_open(self, at: datetime) -> None:
        state = self._state
        state.status, state.half_open_at = BreakerStatus.HALF_OPEN, at
        state.probes_allowed = state.probe_successes = 0

    def _close(self) -> None:
        state = self._state
        state.status, state.buckets = BreakerStatus.CLOSED, []  # a fresh start after recovery
        state.opened_at = state.half_open_at = None
        state.probes_allowed = state.probe_successes = 0

    def _refuse(self, wait: float, reason: str) -> Decision:
        return Decision(
            allowed=False, state=self._state.status, retry_after_s=max(wait, 0.0), reason=reason
        )
