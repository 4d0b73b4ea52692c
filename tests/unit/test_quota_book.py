"""The quota ledger: reservations, idempotent commits, windows, open-run cap, carry-over."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from workflows.quota_book import QuotaBook
from workflows.quota_types import (
    QuotaLimits,
    QuotaScope,
    QuotaScopeKind,
    QuotaState,
    Refusal,
    Reservation,
    usd,
)

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
ACME = QuotaScope(kind=QuotaScopeKind.TENANT, id="acme")


def _book(**limits: float | int | None) -> QuotaBook:
    return QuotaBook(ACME, QuotaLimits(**limits))


def _reserved(result: Reservation | Refusal) -> Reservation:
    assert isinstance(result, Reservation), result
    return result


def _held(book: QuotaBook) -> float:
    state = book.snapshot()
    return round(state.spent_day_usd + state.reserved_usd, 6)


def test_fifty_interleaved_reserves_and_commits_never_pass_the_limit() -> None:
    rng = random.Random(12)
    book = _book(per_day_usd=5.0, per_month_usd=8.0)
    open_keys: list[str] = []
    granted = refused = 0
    for i in range(50):
        if open_keys and rng.random() < 0.45:
            key = open_keys.pop(rng.randrange(len(open_keys)))
            held = next(r for r in book.snapshot().reservations if r.key == key).amount_usd
            if rng.random() < 0.2:
                book.release(key)
            else:
                book.commit(key, round(held * rng.uniform(0.3, 1.0), 6), NOW)
        else:
            result = book.reserve(f"k{i}", f"run-{i % 4}", round(rng.uniform(0.1, 1.5), 2), NOW)
            if isinstance(result, Reservation):
                open_keys.append(result.key)
                granted += 1
            else:
                refused += 1
        assert _held(book) <= 5.0
        state = book.snapshot()
        assert round(state.spent_month_usd + state.reserved_usd, 6) <= 8.0
    assert granted > 10 and refused > 0  # both paths were exercised


def test_retried_reserve_returns_the_same_reservation_and_holds_once() -> None:
    book = _book(per_day_usd=1.0)
    first = _reserved(book.reserve("run-1:2:c1", "run-1", 0.6, NOW))
    again = book.reserve("run-1:2:c1", "run-1", 0.6, NOW + timedelta(seconds=5))
    assert again == first
    assert book.reserved_usd == 0.6
    assert isinstance(book.reserve("run-1:2:c2", "run-1", 0.6, NOW), Refusal)


def test_retried_commit_counts_the_spend_once() -> None:
    book = _book(per_day_usd=1.0)
    book.reserve("k", "run-1", 0.5, NOW)
    first = book.commit("k", 0.4, NOW)
    second = book.commit("k", 0.4, NOW + timedelta(seconds=3))
    assert second == first
    state = book.snapshot()
    assert (state.spent_day_usd, state.spent_month_usd, state.reserved_usd) == (0.4, 0.4, 0.0)


def test_commit_for_an_unknown_key_still_records_the_spend() -> None:
    book = _book(per_day_usd=1.0)
    commit = book.commit("never-reserved", 0.25, NOW, run_id="run-9")
    assert (commit.reserved_usd, commit.run_id) == (0.0, "run-9")
    assert book.snapshot().spent_day_usd == 0.25


def test_reserve_retried_after_its_commit_holds_nothing() -> None:
    book = _book(per_day_usd=1.0)
    book.reserve("k", "run-1", 0.5, NOW)
    book.commit("k", 0.5, NOW)
    late = _reserved(book.reserve("k", "run-1", 0.5, NOW))
    assert late.is_settled
    assert _held(book) == 0.5


def test_release_frees_the_reservation_and_a_late_reserve_retry_holds_nothing() -> None:
    book = _book(per_day_usd=1.0)
    book.reserve("k", "run-1", 0.8, NOW)
    freed = book.release("k")
    assert freed is not None and freed.amount_usd == 0.8
    assert book.reserved_usd == 0.0
    assert _reserved(book.reserve("k", "run-1", 0.8, NOW)).is_settled
    assert book.reserved_usd == 0.0
    assert isinstance(book.reserve("k2", "run-1", 1.0, NOW), Reservation)


def test_a_commit_after_a_release_still_counts_the_money_spent() -> None:
    book = _book(per_day_usd=1.0)
    book.reserve("k", "run-1", 0.3, NOW)
    book.release("k")
    book.commit("k", 0.3, NOW)
    book.commit("k", 0.3, NOW)
    assert book.snapshot().spent_day_usd == 0.3


def test_release_run_frees_every_reservation_of_that_run_only() -> None:
    book = _book(per_day_usd=10.0)
    for i in range(3):
        book.reserve(f"a{i}", "run-a", 1.0, NOW)
    book.reserve("b0", "run-b", 2.0, NOW)
    freed = book.release_run("run-a")
    assert sorted(r.key for r in freed) == ["a0", "a1", "a2"]
    assert book.reserved_usd == 2.0


def test_stale_reservations_are_released_after_their_max_age() -> None:
    book = _book()
    book.reserve("old", "run-a", 1.0, NOW)
    book.reserve("new", "run-b", 1.0, NOW + timedelta(minutes=50))
    stale = book.release_stale(NOW + timedelta(hours=1, minutes=1), timedelta(hours=1))
    assert [r.key for r in stale] == ["old"]
    assert book.reserved_usd == 1.0


def test_refusal_is_one_line_saying_spent_reserved_and_needed() -> None:
    book = _book(per_day_usd=5.0)
    book.reserve("held", "run-1", 0.4, NOW)
    book.commit("earlier", 4.8, NOW)  # spend recorded without a reservation
    refusal = book.reserve("next", "run-2", 0.3, NOW)
    assert isinstance(refusal, Refusal)
    assert refusal.message == (
        "tenant acme: $4.80 of $5.00 spent today, $0.40 reserved; this call needs $0.30"
    )
    assert refusal.limit == "per_day_usd"
    assert refusal.resets_at == datetime(2025, 3, 15, tzinfo=UTC)


def test_monthly_limit_refuses_with_its_own_window() -> None:
    book = _book(per_month_usd=2.0)
    book.commit("k", 1.9, NOW)
    refusal = book.reserve("k2", "run-1", 0.2, NOW)
    assert isinstance(refusal, Refusal) and refusal.limit == "per_month_usd"
    assert "spent this month" in refusal.message
    assert refusal.resets_at == datetime(2025, 4, 1, tzinfo=UTC)


def test_day_rollover_resets_daily_spend_and_keeps_reservations() -> None:
    book = _book(per_day_usd=1.0)
    book.commit("k1", 0.9, NOW)
    book.reserve("k2", "run-1", 0.1, NOW)
    assert isinstance(book.reserve("k3", "run-1", 0.5, NOW), Refusal)
    tomorrow = NOW + timedelta(hours=10)  # past midnight UTC
    assert isinstance(book.reserve("k3", "run-1", 0.5, tomorrow), Reservation)
    state = book.snapshot()
    assert state.spent_day_usd == 0.0 and state.spent_month_usd == 0.9
    assert state.reserved_usd == 0.6
    assert state.day_start == datetime(2025, 3, 15, tzinfo=UTC)


def test_month_rollover_resets_monthly_spend_including_across_new_year() -> None:
    book = _book(per_month_usd=1.0)
    book.commit("k1", 1.0, datetime(2025, 12, 31, 23, 59, tzinfo=UTC))
    assert isinstance(
        book.reserve("k2", "r", 0.1, datetime(2025, 12, 31, 23, 59, tzinfo=UTC)), Refusal
    )
    assert isinstance(
        book.reserve("k2", "r", 0.1, datetime(2026, 1, 1, 0, 1, tzinfo=UTC)), Reservation
    )
    state = book.snapshot()
    assert state.month_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert state.spent_month_usd == 0.0


def test_an_older_timestamp_never_reopens_a_past_window() -> None:
    book = _book(per_day_usd=1.0)
    book.commit("k1", 0.5, NOW + timedelta(days=1))
    book.commit("k2", 0.2, NOW)  # a late commit stamped yesterday counts in today's window
    assert book.snapshot().spent_day_usd == 0.7


def test_open_run_cap_refuses_past_the_limit_and_frees_on_close() -> None:
    book = _book(max_open_runs=2)
    assert book.open_run("r1") is True
    assert book.open_run("r1") is False  # a retry: already counted, still allowed
    assert book.open_run("r2") is True
    refusal = book.open_run("r3")
    assert isinstance(refusal, Refusal) and refusal.limit == "max_open_runs"
    assert refusal.message == "tenant acme: 2 of 2 runs open; run r3 may start when one ends"
    book.reserve("r1:1", "r1", 0.4, NOW)
    freed = book.close_run("r1")
    assert [r.key for r in freed] == ["r1:1"] and book.reserved_usd == 0.0
    assert book.open_run("r3") is True
    assert book.open_run("r1") is False  # a late retry of a closed run takes no slot
    assert book.snapshot().open_runs == ["r2", "r3"]


def test_a_closed_runs_late_reserve_holds_nothing() -> None:
    book = _book(per_day_usd=1.0)
    book.open_run("r1")
    book.close_run("r1")
    assert _reserved(book.reserve("r1:5", "r1", 0.5, NOW)).is_settled
    assert book.reserved_usd == 0.0


def test_unlimited_scope_allows_any_amount_and_zero_limit_allows_none() -> None:
    assert isinstance(_book().reserve("k", "r", 1e6, NOW), Reservation)
    assert isinstance(_book(per_day_usd=0).reserve("k", "r", 0.01, NOW), Refusal)


def test_negative_limits_and_amounts_are_refused() -> None:
    with pytest.raises(ValidationError):
        QuotaLimits(per_day_usd=-1)
    with pytest.raises(ValidationError):
        QuotaLimits(max_open_runs=-2)
    with pytest.raises(ValueError, match="must not be negative"):
        _book().reserve("k", "r", -0.1, NOW)


def test_snapshot_round_trips_through_continue_as_new() -> None:
    book = _book(per_day_usd=3.0, max_open_runs=4)
    book.open_run("r1")
    book.reserve("k1", "r1", 1.0, NOW)
    book.reserve("k2", "r1", 0.5, NOW)
    book.commit("k1", 0.7, NOW)
    carried = QuotaState.model_validate_json(book.snapshot().model_dump_json())
    restored = QuotaBook.restore(carried)
    assert restored.snapshot() == book.snapshot()
    restored.commit("k1", 0.7, NOW)  # a retry across continue-as-new counts nothing
    assert restored.snapshot().spent_day_usd == 0.7
    assert restored.reserve("k2", "r1", 0.5, NOW) == book.snapshot().reservations[0]


def test_idempotency_memory_is_bounded() -> None:
    book = QuotaBook(ACME, memory=10)
    for i in range(50):
        book.commit(f"k{i}", 0.01, NOW)
        book.open_run(f"r{i}")
        book.close_run(f"r{i}")
    state = book.snapshot()
    assert len(state.settled) == 10 and state.settled[-1].key == "k49"
    assert len(state.closed_runs) == 10


def test_usd_shows_cents_or_micro_dollars() -> None:
    assert [usd(4.8), usd(0.3), usd(0.000251), usd(0)] == ["$4.80", "$0.30", "$0.000251", "$0.00"]
