"""Model retries carry jitter, and a model with a fallback gives way within its budget
(activities.models.retry): the delays the activity sets, and when it stops retrying."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.models.retry import retry_delay, with_retry_delay
from workflows.contract import ErrorType
from workflows.payloads import ModelRetryBudget

SERVER_ERROR = ApplicationError("HTTP 500", type=ErrorType.MODEL_SERVER_ERROR)


def test_backoff_doubles_stretched_by_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for attempt, backoff in [(1, 1.0), (2, 2.0), (3, 4.0), (9, 30.0)]:
        delays = {retry_delay(attempt, base=1.0, rng=rng).total_seconds() for _ in range(50)}
        assert all(backoff <= d <= backoff * 1.5 for d in delays), (attempt, delays)
        assert len(delays) > 40  # really random: no two runs retry in lockstep


def test_retry_after_is_honoured_plus_up_to_a_fifth() -> None:
    rng = random.Random(7)
    delays = [
        retry_delay(1, base=1.0, retry_after=timedelta(seconds=10), rng=rng).total_seconds()
        for _ in range(50)
    ]
    assert all(10.0 <= d <= 12.0 for d in delays) and len(set(delays)) > 40


def _attempt(attempt: int, first_scheduled_ago: float, budget: ModelRetryBudget | None) -> Any:
    env = ActivityEnvironment()
    scheduled = datetime.now(UTC) - timedelta(seconds=first_scheduled_ago)
    env.info = dataclasses.replace(env.info, attempt=attempt, scheduled_time=scheduled)
    return env.run(with_retry_delay, SERVER_ERROR, budget)


def test_a_retryable_failure_gets_its_own_jittered_delay() -> None:
    err = _attempt(2, 1.0, None)
    assert not err.non_retryable
    assert timedelta(seconds=2) <= err.next_retry_delay <= timedelta(seconds=3)


def test_a_spent_budget_makes_the_failure_final_so_the_fallback_takes_over() -> None:
    budget = ModelRetryBudget(max_attempts=3, max_seconds=5.0)
    assert not _attempt(1, 0.0, budget).non_retryable
    by_attempts = _attempt(3, 1.0, budget)
    assert by_attempts.non_retryable and "gave up after 3 attempt(s)" in by_attempts.message
    by_seconds = _attempt(2, 3.1, budget)  # the next attempt (2 to 3 s on) would be past 5 s
    assert by_seconds.non_retryable and by_seconds.type == ErrorType.MODEL_SERVER_ERROR


def test_final_failures_pass_unchanged() -> None:
    rejected = ApplicationError(
        "HTTP 400", type=ErrorType.MODEL_REQUEST_REJECTED, non_retryable=True
    )
    env = ActivityEnvironment()
    assert env.run(with_retry_delay, rejected, ModelRetryBudget()) is rejected
