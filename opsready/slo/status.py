"""Where each SLO stands now, from the shared SLI source: its error budget left over its
window and its burn rate in each window pair of the alert policy (what `opsready slo
status` prints and the HTML report plots over time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel

from opsready.slo.source import VisibilitySliSource
from workflows.slo_types import (
    DEFAULT_BURN_POLICY,
    DEFAULT_MIN_EVENTS,
    BurnWindow,
    ErrorBudget,
    SliCounts,
    Slo,
)


class PairBurn(BaseModel):
    """One window pair: both burn rates, and whether the pair alerts (both >= factor)."""

    window: BurnWindow
    long_rate: float
    short_rate: float
    is_alerting: bool

    @property
    def rate(self) -> float:
        """What the pair alerts on: the lower of the two (both must reach the factor)."""
        return min(self.long_rate, self.short_rate)


class SloStatus(BaseModel):
    agent: str
    slo: Slo
    budget: ErrorBudget  # over the SLO's own window
    burns: list[PairBurn]


async def slo_status(
    source: VisibilitySliSource,
    agent: str,
    slos: Sequence[Slo],
    as_of: datetime,
    policy: Sequence[BurnWindow] = DEFAULT_BURN_POLICY,
    *,
    min_events: int = DEFAULT_MIN_EVENTS,
) -> list[SloStatus]:
    """Every SLO of `agent` as of `as_of`, judged exactly as the monitor judges it."""
    windows = sorted({w for pair in policy for w in (pair.long, pair.short)})
    windows += sorted({slo.window for slo in slos} - set(windows))
    found = await source.window_counts(agent, slos, windows, as_of)
    counts = {(c.slo, timedelta(seconds=c.window_seconds)): c.counts for c in found}
    return [_status(agent, slo, counts, policy, min_events) for slo in slos]


def _status(
    agent: str,
    slo: Slo,
    counts: dict[tuple[str, timedelta], SliCounts],
    policy: Sequence[BurnWindow],
    min_events: int,
) -> SloStatus:
    burns = []
    for pair in policy:
        long, short = counts[(slo.name, pair.long)], counts[(slo.name, pair.short)]
        burns.append(
            PairBurn(
                window=pair,
                long_rate=long.burn_rate(slo.objective),
                short_rate=short.burn_rate(slo.objective),
                is_alerting=pair.is_burning(long, short, slo.objective, min_events),
            )
        )
    budget = ErrorBudget.of(slo.objective, counts[(slo.name, slo.window)])
    return SloStatus(agent=agent, slo=slo, budget=budget, burns=burns)
