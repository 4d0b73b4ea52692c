"""Circuit breaker: opens on a failure rate with enough calls, half-opens, closes, reopens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from workflows.breaker_policy import CircuitBreaker
from workflows.breaker_types import BreakerConfig, BreakerState, BreakerStatus, CallOutcome

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
CONFIG = BreakerConfig(window_s=60, failure_rate=0.5, min_calls=4, open_s=30, half_open_probes=2)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _opened() -> CircuitBreaker:
    breaker = CircuitBreaker("openai/gpt-4o-mini", CONFIG)
    outcomes: list[CallOutcome] = ["ok", "failure", "ok", "timeout"]
    for i, outcome in enumerate(outcomes):
        breaker.record(outcome, _at(i))
    assert breaker.status is BreakerStatus.OPEN
    return breaker


def test_failures_below_min_calls_do_not_open_the_breaker() -> None:
    breaker = CircuitBreaker("search_kb", CONFIG)
    for i in range(3):
        breaker.record("failure", _at(i))
    assert breaker.status is BreakerStatus.CLOSED
    assert breaker.allow(_at(3)).allowed


def test_breaker_opens_when_the_failure_rate_reaches_the_threshold() -> None:
    breaker = CircuitBreaker("openai/gpt-4o-mini", CONFIG)
    outcomes: list[CallOutcome] = ["ok", "ok", "failure"]
    for i, outcome in enumerate(outcomes):
        breaker.record(outcome, _at(i))
    assert breaker.record("ok", _at(3)) is BreakerStatus.CLOSED  # 1 of 4: under 50%
    assert breaker.record("timeout", _at(4)) is BreakerStatus.CLOSED  # 2 of 5: under 50%
    assert breaker.record("failure", _at(5)) is BreakerStatus.OPEN  # 3 of 6: at 50%
    decision = breaker.allow(_at(6))
    assert not decision.allowed and decision.state is BreakerStatus.OPEN
    assert decision.retry_after_s == pytest.approx(29)
    assert "3 of 6 calls failed in the last 60s" in decision.reason


def test_failures_outside_the_window_do_not_count() -> None:
    breaker = CircuitBreaker("lookup_order", CONFIG)
    for i in range(3):
        breaker.record("failure", _at(i))
    for i in range(3):
        breaker.record("ok", _at(100 + i))
    assert breaker.record("failure", _at(103)) is BreakerStatus.CLOSED  # 1 of 4 in window
    assert breaker.window_counts(_at(103)) == (4, 1)


def test_open_breaker_half_opens_after_open_s_and_allows_only_the_probes() -> None:
    breaker = _opened()
    assert not breaker.allow(_at(32)).allowed  # opened at 3: open until 33
    first, second, third = (breaker.allow(_at(33 + i)) for i in range(3))
    assert first.allowed and first.state is BreakerStatus.HALF_OPEN
    assert second.allowed
    assert not third.allowed and third.state is BreakerStatus.HALF_OPEN
    assert third.retry_after_s == pytest.approx(28)


def test_probe_successes_close_the_breaker() -> None:
    breaker = _opened()
    breaker.allow(_at(40))
    breaker.allow(_at(40))
    assert breaker.record("ok", _at(41)) is BreakerStatus.HALF_OPEN
    assert breaker.record("ok", _at(42)) is BreakerStatus.CLOSED
    assert breaker.allow(_at(43)).allowed
    assert breaker.window_counts(_at(43)) == (0, 0)  # the old failures are forgotten


def test_a_probe_failure_opens_the_breaker_again() -> None:
    breaker = _opened()
    breaker.allow(_at(40))
    assert breaker.record("timeout", _at(41)) is BreakerStatus.OPEN
    decision = breaker.allow(_at(42))
    assert not decision.allowed and decision.retry_after_s == pytest.approx(29)
    assert "probe timeout while half-open" in decision.reason


def test_probes_that_never_report_are_replaced_after_open_s() -> None:
    breaker = _opened()
    breaker.allow(_at(40))
    breaker.allow(_at(40))
    assert not breaker.allow(_at(69)).allowed
    assert breaker.allow(_at(70)).allowed


def test_memory_is_bounded_at_any_call_rate() -> None:
    config = CONFIG.model_copy(update={"min_calls": 10**9})  # never opens: only counts
    breaker = CircuitBreaker("search_kb", config)
    for i in range(5000):
        breaker.record("failure" if i % 3 else "ok", _at(i * 0.1))
    state = breaker.snapshot()
    assert len(state.buckets) <= config.buckets
    calls, _ = breaker.window_counts(_at(499.9))
    assert 550 <= calls <= 600  # the last 60 s, to a bucket's precision


def test_state_survives_a_round_trip_through_a_payload() -> None:
    breaker = _opened()
    carried = BreakerState.model_validate_json(breaker.snapshot().model_dump_json())
    restored = CircuitBreaker("openai/gpt-4o-mini", CONFIG, carried)
    assert not restored.allow(_at(10)).allowed
    assert restored.allow(_at(33)).allowed


def test_config_refuses_impossible_values() -> None:
    with pytest.raises(ValidationError):
        BreakerConfig(failure_rate=1.5)
    with pytest.raises(ValidationError):
        BreakerConfig(min_calls=0)
    with pytest.raises(ValidationError):
        BreakerConfig(window_s=0)
