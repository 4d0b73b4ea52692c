"""The spend ledger of one quota scope: reserve before a call, commit its actual cost after.

Pure and deterministic (callers pass `now`, from `workflow.now()` in a workflow), so the
quota entity workflow can hold one and every replay rebuilds the same ledger.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta

from workflows.quota_types import (
    Commit,
    QuotaLimitName,
    QuotaLimits,
    QuotaScope,
    QuotaState,
    Refusal,
    Reservation,
    SettledKey,
    usd,
)

# Settled keys and closed runs are remembered only to absorb retries, which come within
# minutes; a few hundred of each keeps the continue-as-new carry-over small.
DEFAULT_MEMORY = 256


def day_start(now: datetime) -> datetime:
    now = _utc(now)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def month_start(now: datetime) -> datetime:
    now = _utc(now)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are taken as UTC: workflow.now() is aware, tests may not be.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class QuotaBook:
    """Spend, reservations and open runs of one scope, with per-UTC-day and month windows.

    Invariant: a reserve succeeds only if spent + reserved + amount stays within every
    limit, so while commits do not exceed their reservations, spent + reserved never
    passes a limit. A commit above its reservation is still recorded (money spent is
    spent); later reserves are refused until the window rolls over.
    """

    def __init__(
        self, scope: QuotaScope, limits: QuotaLimits | None = None, *, memory: int = DEFAULT_MEMORY
    ) -> None:
        self._state = QuotaState(scope=scope, limits=limits or QuotaLimits())
        self._memory = memory
        self._reservations: dict[str, Reservation] = {}
        self._settled: OrderedDict[str, SettledKey] = OrderedDict()
        self._open: dict[str, None] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()

    @classmethod
    def restore(cls, state: QuotaState, *, memory: int = DEFAULT_MEMORY) -> QuotaBook:
        """The book a `snapshot()` was taken of (continue-as-new)."""
        book = cls(state.scope, state.limits, memory=memory)
        book._state = state.model_copy(
            update={"reservations": [], "open_runs": [], "settled": [], "closed_runs": []}
        )
        book._reservations = {r.key: r for r in state.reservations}
        book._settled = OrderedDict((s.key, s) for s in state.settled)
        book._open = dict.fromkeys(state.open_runs)
        book._closed = OrderedDict.fromkeys(state.closed_runs)
        return book

    @property
    def scope(self) -> QuotaScope:
        return self._state.scope

    @property
    def limits(self) -> QuotaLimits:
        return self._state.limits

    @property
    def reserved_usd(self) -> float:
        return round(sum(r.amount_usd for r in self._reservations.values()), 6)

    def set_limits(self, limits: QuotaLimits) -> None:
        """New limits apply to the next reserve; nothing already reserved is taken back."""
        self._state.limits = limits

    def reserve(
        self, key: str, run_id: str, amount_usd: float, now: datetime
    ) -> Reservation | Refusal:
        """Hold `amount_usd` for one call. A retry with the same key returns the same answer
        without holding twice; a key already settled, or a run already closed, holds nothing."""
        if amount_usd < 0:
            raise ValueError(f"reserve {key}: amount_usd must not be negative ({amount_usd})")
        self._roll(now)
        if key in self._reservations:
            return self._reservations[key]
        if key in self._settled or run_id in self._closed:
            settled = self._settled.get(key)
            held = settled.reserved_usd if settled else amount_usd
            return Reservation(
                key=key, run_id=run_id, amount_usd=held, reserved_at=_utc(now), is_settled=True
            )
        refusal = self._refusal(amount_usd)
        if refusal is not None:
            return refusal
        reservation = Reservation(
            key=key, run_id=run_id, amount_usd=round(amount_usd, 6), reserved_at=_utc(now)
        )
        self._reservations[key] = reservation
        return reservation

    def commit(
        self, key: str, actual_usd: float, now: datetime, run_id: str | None = None
    ) -> Commit:
        """Record a call's actual cost once and free its reservation.

        A retried commit returns the first one and counts nothing. A commit for a key that
        was never reserved (or was released) still counts: the money was spent.
        """
        if actual_usd < 0:
            raise ValueError(f"commit {key}: actual_usd must not be negative ({actual_usd})")
        self._roll(now)
        settled = self._settled.get(key)
        if settled is not None and settled.outcome == "committed":
            return Commit(
                key=key,
                run_id=settled.run_id,
                actual_usd=settled.actual_usd,
                reserved_usd=settled.reserved_usd,
                committed_at=settled.settled_at or _utc(now),
            )
        reservation = self._reservations.pop(key, None)
        reserved = reservation.amount_usd if reservation else 0.0
        owner = reservation.run_id if reservation else (settled.run_id if settled else run_id)
        actual = round(actual_usd, 6)
        self._state.spent_day_usd = round(self._state.spent_day_usd + actual, 6)
        self._state.spent_month_usd = round(self._state.spent_month_usd + actual, 6)
        self._settle(
            SettledKey(
                key=key,
                run_id=owner,
                reserved_usd=reserved,
                outcome="committed",
                actual_usd=actual,
                settled_at=_utc(now),
            )
        )
        return Commit(
            key=key, run_id=owner, actual_usd=actual, reserved_usd=reserved, committed_at=_utc(now)
        )

    def release(self, key: str) -> Reservation | None:
        """Free a reservation whose call failed or was halted; the freed one, or None.

        An unknown key is remembered as released, so a late retry of its reserve holds nothing.
        """
        if key in self._settled:
            return None
        reservation = self._reservations.pop(key, None)
        self._settle(
            SettledKey(
                key=key,
                run_id=reservation.run_id if reservation else None,
                reserved_usd=reservation.amount_usd if reservation else 0.0,
                outcome="released",
            )
        )
        return reservation

    def release_run(self, run_id: str) -> list[Reservation]:
        """Free every reservation of one run (it failed, was halted, or ended)."""
        mine = [r for r in self._reservations.values() if r.run_id == run_id]
        for reservation in mine:
            self.release(reservation.key)
        return mine

    def release_stale(self, now: datetime, max_age: timedelta) -> list[Reservation]:
        """Free reservations older than `max_age` (their run died without a word)."""
        cutoff = _utc(now) - max_age
        stale = [r for r in self._reservations.values() if r.reserved_at < cutoff]
        for reservation in stale:
            self.release(reservation.key)
        return stale

    def open_run(self, run_id: str) -> bool | Refusal:
        """Count a run against `max_open_runs`: True when counted now, False when it was
        already counted (a retry, or a run already closed); both mean it may go on."""
        if run_id in self._open or run_id in self._closed:
            return False
        cap = self.limits.max_open_runs
        if cap is not None and len(self._open) >= cap:
            return Refusal(
                scope=self.scope,
                limit="max_open_runs",
                message=(
                    f"{self.scope.label()}: {len(self._open)} of {cap} runs open; "
                    f"run {run_id} may start when one ends"
                ),
            )
        self._open[run_id] = None
        return True

    def close_run(self, run_id: str) -> list[Reservation]:
        """A run ended: free its slot and anything it still held; the freed reservations."""
        self._open.pop(run_id, None)
        self._closed[run_id] = None
        self._closed.move_to_end(run_id)
        while len(self._closed) > self._memory:
            self._closed.popitem(last=False)
        return self.release_run(run_id)

    def snapshot(self) -> QuotaState:
        return self._state.model_copy(
            deep=True,
            update={
                "reservations": list(self._reservations.values()),
                "open_runs": list(self._open),
                "settled": list(self._settled.values()),
                "closed_runs": list(self._closed),
            },
        )

    def roll(self, now: datetime) -> None:
        """Start a new day or month window if `now` is past the current one."""
        self._roll(now)

    def _roll(self, now: datetime) -> None:
        state = self._state
        today, this_month = day_start(now), month_start(now)
        # Windows only move forward: a late, older timestamp never reopens a past window.
        if state.day_start is None or today > state.day_start:
            state.day_start, state.spent_day_usd = today, 0.0
        if state.month_start is None or this_month > state.month_start:
            state.month_start, state.spent_month_usd = this_month, 0.0

    def _refusal(self, amount: float) -> Refusal | None:
        state, reserved = self._state, self.reserved_usd
        assert state.day_start is not None and state.month_start is not None
        windows: tuple[tuple[QuotaLimitName, float, str, datetime], ...] = (
            ("per_day_usd", state.spent_day_usd, "today", state.day_start + timedelta(days=1)),
            ("per_month_usd", state.spent_month_usd, "this month", _next_month(state.month_start)),
        )
        for limit, spent, window, resets_at in windows:
            cap: float | None = getattr(state.limits, limit)
            if cap is not None and round(spent + reserved + amount, 6) > cap:
                return Refusal(
                    scope=state.scope,
                    limit=limit,
                    message=(
                        f"{state.scope.label()}: {usd(spent)} of {usd(cap)} spent {window}, "
                        f"{usd(reserved)} reserved; this call needs {usd(amount)}"
                    ),
                    resets_at=resets_at,
                )
        return None

    def _settle(self, settled: SettledKey) -> None:
        self._settled[settled.key] = settled
        self._settled.move_to_end(settled.key)
        while len(self._settled) > self._memory:
            self._settled.popitem(last=False)
