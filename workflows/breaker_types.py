"""Types of the circuit breakers that guard model providers and tools.

Pydantic models, so a breaker's state can be queried, carried over continue-as-new and
recorded in history like any other payload.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CallOutcome = Literal["ok", "failure", "timeout"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BreakerStatus(StrEnum):
    CLOSED = "closed"  # calls flow; outcomes are counted
    OPEN = "open"  # calls are refused until the open period ends
    HALF_OPEN = "half_open"  # a few probe calls test whether the dependency is back


class BreakerConfig(_Model):
    """When a breaker opens and how it recovers.

    It opens when, over the last `window_s` seconds, at least `min_calls` calls were made
    and the share that failed (timeouts count as failures) is `failure_rate` or more. It
    stays open `open_s` seconds, then lets `half_open_probes` calls through: all of them
    succeeding closes it, any one failing opens it again.
    """

    window_s: float = Field(default=60.0, gt=0)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    min_calls: int = Field(default=10, ge=1)
    open_s: float = Field(default=30.0, gt=0)
    half_open_probes: int = Field(default=2, ge=1)
    # The window is kept as this many time buckets: memory stays bounded at any call rate.
    buckets: int = Field(default=12, ge=1, le=600)


class BreakerBucket(_Model):
    """Outcomes counted in one slice of the sliding window."""

    index: int  # floor(epoch seconds / bucket width)
    ok: int = 0
    failures: int = 0
    timeouts: int = 0


class BreakerState(_Model):
    name: str  # the provider or tool it guards, e.g. "openai/gpt-4o-mini" or "refund_order"
    status: BreakerStatus = BreakerStatus.CLOSED
    buckets: list[BreakerBucket] = Field(default_factory=list)
    opened_at: datetime | None = None
    half_open_at: datetime | None = None
    probes_allowed: int = 0  # probes let through since the breaker half-opened
    probe_successes: int = 0
    last_reason: str | None = None  # why it last opened, for the operator


class Decision(_Model):
    """The answer to "may this call go ahead?"."""

    allowed: bool
    state: BreakerStatus
    retry_after_s: float | None = None  # when refused: seconds until a probe may go
    reason: str


# --- the `CircuitBreaker` entity workflow ---------------------------------------------------


class OutcomeBatch(_Model):
    """Call outcomes one worker saw since its last report (the `record` signal)."""

    ok: int = Field(default=0, ge=0)
    failures: int = Field(default=0, ge=0)
    timeouts: int = Field(default=0, ge=0)
    last_error: str | None = None


class BreakerInput(_Model):
    """How a breaker starts: what it guards, its thresholds, and what continue-as-new carries."""

    name: str
    config: BreakerConfig = Field(default_factory=BreakerConfig)
    state: BreakerState | None = None


class BreakerView(_Model):
    """The `state` query: the breaker as of now (an open one past its open period shows
    half-open: the next call is a probe)."""

    state: BreakerState
    config: BreakerConfig
    calls_in_window: int = 0
    failures_in_window: int = 0
    as_of: datetime | None = None
