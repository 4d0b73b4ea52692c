"""At most N calls in any one-second window on a rate-limited task queue, within one
worker process.

Temporal's task-queue rate limit (`max_task_queue_activities_per_second`) is the limit
across every worker; it is a token bucket, so at the start of a burst it hands out its
whole bucket at once and refills meanwhile: a provider counting requests per second would
see up to twice the rate in one second. So each call on a rate-limited queue also takes a
slot here: it goes when fewer than N calls of this process went in the last second (plus
a small margin for the time a request takes to reach the provider).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping

MARGIN_SECONDS = 0.1


class Pacer:
    def __init__(self, rates: Mapping[str, float], window: float = 1.0) -> None:
        self._rates = dict(rates)
        self._window = window + MARGIN_SECONDS
        self._sent: dict[str, deque[float]] = {}

    async def wait(self, task_queue: str) -> float:
        """Wait for this call's slot on `task_queue` (none when it is not rate-limited);
        the seconds waited."""
        rate = self._rates.get(task_queue)
        if rate is None:
            return 0.0
        per_window = max(int(rate * (self._window - MARGIN_SECONDS)), 1)
        sent = self._sent.setdefault(task_queue, deque())
        now = time.monotonic()
        # The slot: the moment the call N back leaves the window (now, if fewer went).
        slot = now if len(sent) < per_window else max(now, sent[-per_window] + self._window)
        sent.append(slot)  # taken before sleeping: a later caller counts it
        while len(sent) > per_window:
            sent.popleft()
        if slot > now:
            await asyncio.sleep(slot - now)
        return slot - now
