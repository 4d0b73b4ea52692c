"""Types of the spend quotas: who a ledger is for, its limits, reservations and its state.

Pydantic models that travel in Temporal payloads (entity workflow queries, updates and the
continue-as-new carry-over), so field names are part of the contract.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def usd(amount: float) -> str:
    """Dollars as an operator reads them: cents, or micro-dollars when cents would hide it."""
    cents = f"{amount:.2f}"
    if abs(float(cents) - amount) < 1e-9:
        return f"${cents}"
    return "$" + f"{amount:.6f}".rstrip("0")


class QuotaScopeKind(StrEnum):
    USER = "user"
    TENANT = "tenant"
    AGENT = "agent"


class QuotaScope(_Model):
    """Whose spend a ledger counts: one user, one tenant or one agent."""

    kind: QuotaScopeKind
    id: str = Field(min_length=1, max_length=200)

    def label(self) -> str:
        return f"{self.kind.value} {self.id}"


class QuotaLimits(_Model):
    """Limits of one scope; None means unlimited, 0 means nothing is allowed."""

    per_day_usd: float | None = Field(default=None, ge=0)
    per_month_usd: float | None = Field(default=None, ge=0)
    max_open_runs: int | None = Field(default=None, ge=0)


QuotaLimitName = Literal["per_day_usd", "per_month_usd", "max_open_runs"]


class Reservation(_Model):
    """Money set aside for one call before it is made; `key` makes retries idempotent.

    `is_settled` is True when a retried reserve arrives after the key was already committed
    or released: nothing new is held, and the caller must not make the call twice.
    """

    key: str
    run_id: str
    amount_usd: float
    reserved_at: datetime
    is_settled: bool = False


class Refusal(_Model):
    """Why a reserve or an open run was refused, in one line an operator can read."""

    scope: QuotaScope
    limit: QuotaLimitName
    message: str
    resets_at: datetime | None = None  # when the window that refused starts afresh


class Commit(_Model):
    """The actual cost of a call, recorded once per key."""

    key: str
    run_id: str | None
    actual_usd: float
    reserved_usd: float  # what was held for it (0 when the key was unknown)
    committed_at: datetime


class SettledKey(_Model):
    """A key that is no longer reserved, remembered so retries of it count nothing."""

    key: str
    run_id: str | None
    reserved_usd: float
    outcome: Literal["committed", "released"]
    actual_usd: float = 0.0
    settled_at: datetime | None = None  # when committed (a release carries no time)


class QuotaState(_Model):
    """A ledger's whole state: what the `quota` query shows and continue-as-new carries.

    Bounded: reservations and open runs are live work; `settled` and `closed_runs` keep
    only the most recent keys and runs (enough to absorb retries).
    """

    scope: QuotaScope
    limits: QuotaLimits = Field(default_factory=QuotaLimits)
    day_start: datetime | None = None  # UTC midnight of the current day window
    month_start: datetime | None = None  # UTC midnight of the first of the current month
    spent_day_usd: float = 0.0
    spent_month_usd: float = 0.0
    reservations: list[Reservation] = Field(default_factory=list)
    open_runs: list[str] = Field(default_factory=list)
    settled: list[SettledKey] = Field(default_factory=list)
    closed_runs: list[str] = Field(default_factory=list)

    @property
    def reserved_usd(self) -> float:
        return round(sum(r.amount_usd for r in self.reservations), 6)


# --- the `QuotaLedger` entity workflow's input, updates and query -------------------------


class LedgerRequest(_Model):
    """One run's step against one ledger (the `apply` update), applied in this order:
    commit, release, open the run, reserve, close the run. `limits` are the run's own
    (from its config); an operator's `set_limits` overrides them field by field."""

    run_id: str
    limits: QuotaLimits = Field(default_factory=QuotaLimits)
    commit_key: str | None = None
    commit_usd: float = Field(default=0.0, ge=0)
    release_key: str | None = None
    open_run: bool = False
    reserve_key: str | None = None
    reserve_usd: float = Field(default=0.0, ge=0)
    close_run: bool = False


class LedgerReply(_Model):
    refusal: Refusal | None = None  # nothing was reserved (or opened) when set
    reservation: Reservation | None = None


class QuotaReset(_Model):
    """The `reset` update: spend of the current windows to zero; with `clear_limits`, the
    operator's limits go too (the runs' own apply again)."""

    by: str = Field(min_length=1, max_length=200)
    clear_limits: bool = False


class LedgerView(_Model):
    """The `state` query of a ledger: its book, the operator's limits, and what applies."""

    state: QuotaState
    operator_limits: QuotaLimits = Field(default_factory=QuotaLimits)
    effective_limits: QuotaLimits = Field(default_factory=QuotaLimits)
    updated_at: datetime | None = None


class QuotaLedgerInput(_Model):
    """How a ledger starts: its scope, and what continue-as-new carries over."""

    scope: QuotaScope
    state: QuotaState | None = None
    operator_limits: QuotaLimits = Field(default_factory=QuotaLimits)
