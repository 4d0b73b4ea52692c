"""When a failed model call is tried again: backoff with jitter, and the fallback budget.

Temporal's RetryPolicy has no jitter, so many runs that hit the same outage would retry in
lockstep. The model activity therefore sets each retry's delay itself
(`ApplicationError.next_retry_delay`, which overrides the policy's interval): exponential
backoff (1 s, 2 s, 4 s... capped at 30 s) stretched by a random 0 to 50%, or a provider's
`Retry-After` plus up to 20% (never earlier than the server asked). Jitter only stretches:
the server waits at least a second between attempts whatever the delay (measured on the
dev server: 0.2 s became 1.0 s, 1.3 s stayed 1.3 s). A model with a fallback after it has
a budget (`ModelRetryBudget`): once its attempts are spent or the next attempt would start
past its seconds, the failure is made non-retryable, so the run switches to the fallback
at once instead of sitting out the rest of the policy.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.payloads import ModelRetryBudget

BASE_SECONDS = 1.0  # the first backoff (then doubling, capped); the server's own minimum
CAP_SECONDS = 30.0
BACKOFF_JITTER = 0.5
RETRY_AFTER_JITTER = 0.2


def retry_delay(
    attempt: int,
    *,
    base: float,
    retry_after: timedelta | None = None,
    rng: random.Random | None = None,
) -> timedelta:
    """The delay before attempt `attempt + 1`, jittered."""
    rng = rng or random.Random()
    if retry_after is not None:
        seconds = retry_after.total_seconds()
        return timedelta(seconds=seconds * (1 + rng.uniform(0, RETRY_AFTER_JITTER)))
    backoff = min(CAP_SECONDS, base * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=backoff * (1 + rng.uniform(0, BACKOFF_JITTER)))


def with_retry_delay(
    err: ApplicationError, budget: ModelRetryBudget | None, now: datetime | None = None
) -> ApplicationError:
    """`err` (a provider's failure) with its jittered retry delay, or made non-retryable
    when the model's fallback budget is spent. Non-retryable failures pass unchanged."""
    if err.non_retryable:
        return err
    info = activity.info()
    delay = retry_delay(info.attempt, base=BASE_SECONDS, retry_after=err.next_retry_delay)
    if budget is not None:
        now = now or datetime.now(UTC)
        spent = (now - info.scheduled_time).total_seconds()  # since the first attempt
        if (
            info.attempt >= budget.max_attempts
            or spent + delay.total_seconds() > budget.max_seconds
        ):
            return ApplicationError(
                f"{err.message} (gave up after {info.attempt} attempt(s) in {spent:.1f}s: "
                "the fallback model takes over)",
                type=err.type,
                non_retryable=True,
            )
    return ApplicationError(err.message, type=err.type, next_retry_delay=delay)
